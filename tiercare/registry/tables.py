"""Reading and writing tabular files (CSV and Excel) for imports, exports and templates."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from tiercare.errors import InputError, Problem

TABLE_SUFFIXES = (".csv", ".xlsx")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()[:10]
    return str(value).strip()


def _xlsx_rows(data: bytes) -> list[list[str]]:
    """Cells of the first sheet as text; a formula without a saved result is refused.

    Excel stores the last computed value of every formula; files written by other programs
    (or by scripts) may carry formulas only, which would silently read as empty cells.
    """
    try:
        values = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise InputError.single(f"not a readable .xlsx file: {exc}", field="file") from exc
    rows: list[list[str]] = []
    problems: list[Problem] = []
    value_rows = values.worksheets[0].iter_rows(values_only=True)
    formula_rows = formulas.worksheets[0].iter_rows(values_only=True)
    for number, (row, raw) in enumerate(zip(value_rows, formula_rows, strict=False), start=1):
        for column, (value, source) in enumerate(zip(row, raw, strict=False), start=1):
            if value is None and isinstance(source, str) and source.startswith("="):
                problems.append(Problem(
                    reason=f"cell {get_column_letter(column)}{number} holds the formula "
                    f"'{source}' without a computed value: open and save the file in Excel, "
                    "or paste the values",
                    field=get_column_letter(column), row=number, code="formula_without_value"))
        rows.append([_cell_text(v) for v in row])
    if problems:
        raise InputError(problems)
    return rows


class TableRows(list[dict[str, str]]):
    """Data rows of a table; ``numbers[i]`` is row ``i``'s row number in the file (header = 1).

    Blank rows are dropped, so the numbers keep problems pointing at the right spreadsheet row.
    """

    def __init__(self, rows: Iterable[dict[str, str]], numbers: Sequence[int]) -> None:
        super().__init__(rows)
        self.numbers = list(numbers)


def read_table_bytes(data: bytes, filename: str) -> TableRows:
    """Rows of a CSV (UTF-8, UTF-8 with BOM or GB18030) or .xlsx file as dicts of strings.

    Column names are stripped and lower-cased; blank rows are dropped. A row with non-empty
    cells beyond the last header column is refused (usually an unquoted comma in a CSV cell).
    The result is a :class:`TableRows` that remembers each row's spreadsheet row number.
    """
    suffix = Path(filename).suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(data)
    elif suffix == ".csv":
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise InputError.single("file is neither UTF-8 nor GB18030 text", field="file")
        rows = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    else:
        raise InputError.single(
            f"unsupported file type '{suffix}' (use .csv or .xlsx)", field="file"
        )
    numbered = [(number, r) for number, r in enumerate(rows, start=1) if any(cell for cell in r)]
    rows = [r for _, r in numbered]
    if not rows:
        raise InputError.single("the file is empty (a header row is required)", field="file")
    header = [h.strip().lower() for h in rows[0]]
    named = [h for h in header if h]
    duplicates = sorted({h for h in named if named.count(h) > 1})
    if duplicates:
        raise InputError.single(
            f"the header repeats column name(s) {', '.join(repr(d) for d in duplicates)} "
            "(is the header row missing? the first row must name the columns)",
            field="header", row=1, code="duplicate_column")
    width = len(header)
    spill = [
        Problem(reason=f"row has {len(row)} cells but the header names {width} columns "
                f"(extra cell '{next(c for c in row[width:] if c)}'; "
                "an unquoted comma in a cell?)", field="header", row=number, code="extra_cells")
        for number, row in numbered[1:]
        if len(row) > width and any(row[width:])
    ]
    if spill:
        raise InputError(spill)
    return TableRows(
        ({header[i]: (row[i] if i < len(row) else "") for i in range(width) if header[i]}
         for row in rows[1:]),
        [number for number, _ in numbered[1:]],
    )


def read_table(path: Path) -> TableRows:
    """Rows of a CSV or .xlsx file (see :func:`read_table_bytes`)."""
    return read_table_bytes(read_input_file(path), path.name)


def read_input_file(path: Path) -> bytes:
    """The bytes of an input file, refusing a missing path, a folder or an unreadable file."""
    if not path.exists():
        raise InputError.single(f"file not found: {path}", field="file", code="not_found")
    if not path.is_file():
        raise InputError.single(f"{path} is a folder, not a file", field="file",
                                code="not_a_file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError.single(f"cannot read {path}: {exc.strerror}", field="file") from exc


def write_table(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]],
                *, help_rows: Sequence[Sequence[str]] = ()) -> None:
    """Write rows as CSV (UTF-8 with BOM, so Excel opens it) or .xlsx by the file suffix.

    ``help_rows`` (column, meaning) go to a second sheet "说明 Help" of an .xlsx file.

    Raises
    ------
    InputError
        For another suffix, a folder, or a path that cannot be written (field ``file``).
    """
    if path.is_dir():
        raise InputError.single(f"{path} is a folder: give a file name", field="file",
                                code="not_a_file")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError.single(
            f"unsupported output file type '{path.suffix}' (use .csv or .xlsx)", field="file")
    try:
        _write_table(path, columns, rows, help_rows)
    except OSError as exc:
        raise InputError.single(f"cannot write {path}: {exc.strerror}", field="file") from exc


def _write_table(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]],
                 help_rows: Sequence[Sequence[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "data"
        sheet.append(list(columns))
        for row in rows:
            sheet.append(["" if v is None else v for v in row])
        if help_rows:
            info = workbook.create_sheet("说明 Help")
            info.append(["column / 列", "meaning / 含义"])
            for row in help_rows:
                info.append(list(row))
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
