"""Deterministic Chinese-looking names for the generated demo county.

Names are built from small syllable pools in the manner of North-China place names (a surname
plus 家庄/沟/坪…, a direction or size plus a landform, two auspicious characters plus 镇/乡) and
of people (a surname plus one or two given-name characters). The pools are the generator's own;
no real list of places or people is copied. A :class:`NameMaker` never hands out the same place
name twice, so names are unique within the county.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡杜程苏魏吕"
    "丁任姚卢姜崔钟陆范金石贾夏付方白邹孟秦邱尹薛闫段雷侯龙史陶贺顾郝武常康乔温牛祁阎"
)
GIVEN_MALE = "建国军伟强磊明华平志勇刚斌俊杰海东林峰宏亮文涛永胜利新春生福德保忠成全"
GIVEN_FEMALE = "秀英兰芳丽娟红霞艳萍玲梅燕敏静娜琴桂云凤珍慧雪莉爱春花瑞"

_DIRECTIONS = "东西南北上下前后中"
_SIZES = "大小"
_VILLAGE_SUFFIXES = (
    "庄", "村", "沟", "坪", "峪", "河", "岭", "坡", "湾", "堡", "崖", "洼", "塔", "泉", "寨",
    "窑", "垴", "头", "口", "嘴",
)
_SURNAME_SUFFIXES = ("家庄", "家沟", "家坪", "家峪", "家河", "家岭", "家堡", "家窑", "家垴", "家湾")
_NATURE = "石柳杨榆桃杏枣松柏槐泉清红黑白青龙凤马牛羊鹿安平宁和兴福太永长云水山峰川"
_PLACE_FIRST = "东西南北上平安宁永长太清龙凤石青白红金玉松柏柳榆桃马云泉景兴和福盛"
_PLACE_SECOND = "阳安宁平泉河山峪坪川原塔城庄岭峰湾堡源水林口关营"
_URBAN_FIRST = "城新文兴建永和康锦迎育繁东西南北中府站"
_URBAN_SECOND = "东西南北华昌宁安阳苑园泰兴源关街前"


class NameMaker:
    """Draws unique names from the syllable pools with a NumPy random generator.

    Parameters
    ----------
    rng:
        The generator that makes every choice; the same generator state gives the same names.

    Examples
    --------
    >>> maker = NameMaker(np.random.default_rng(1))
    >>> name = maker.village()
    >>> 2 <= len(name) <= 4
    True
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def _pick(self, pool: str | tuple[str, ...]) -> str:
        return str(pool[int(self._rng.integers(len(pool)))])

    def _unique(self, build: Callable[[], str]) -> str:
        for _ in range(500):
            name = build()
            if name not in self._used:
                self._used.add(name)
                return name
        raise RuntimeError("syllable pools exhausted: could not draw a new unique name")

    def township_stem(self) -> str:
        """Two-character stem of a town or township name (without 镇/乡)."""

        def build() -> str:
            first, second = self._pick(_PLACE_FIRST), self._pick(_PLACE_SECOND)
            return first + second if first != second else first + "阳"

        return self._unique(build)

    def village(self) -> str:
        """Short name of a natural village (without 村民委员会), two to four characters."""

        def build() -> str:
            style = float(self._rng.random())
            if style < 0.40:
                return self._pick(SURNAMES) + self._pick(_SURNAME_SUFFIXES)
            if style < 0.65:
                prefix = self._pick(_DIRECTIONS) if self._rng.random() < 0.7 else self._pick(_SIZES)
                return prefix + self._pick(_NATURE) + self._pick(_VILLAGE_SUFFIXES)
            if style < 0.85:
                return self._pick(_NATURE) + self._pick(_VILLAGE_SUFFIXES)
            return self._pick(SURNAMES) + self._pick(_VILLAGE_SUFFIXES)

        return self._unique(build)

    def community(self) -> str:
        """Short name of an urban community (without 社区居民委员会)."""

        def build() -> str:
            first, second = self._pick(_URBAN_FIRST), self._pick(_URBAN_SECOND)
            return first + second if first != second else first + "华"

        return self._unique(build)

    def person(self, *, male: bool) -> str:
        """A person's name: surname plus one or two given-name characters (not made unique)."""
        pool = GIVEN_MALE if male else GIVEN_FEMALE
        given = self._pick(pool)
        if self._rng.random() < 0.7:
            given += self._pick(pool)
        return self._pick(SURNAMES) + given


def village_committee_name(short: str) -> str:
    """Statistical name of a village committee, e.g. ``王家庄村村民委员会``.

    Examples
    --------
    >>> village_committee_name("王家庄")
    '王家庄村村民委员会'
    >>> village_committee_name("张村")
    '张村村民委员会'
    """
    return f"{short}村民委员会" if short.endswith("村") else f"{short}村村民委员会"


def community_committee_name(short: str) -> str:
    """Statistical name of a residents' committee, e.g. ``新华社区居民委员会``."""
    return f"{short}社区居民委员会"


def clinic_name(short: str) -> str:
    """Name of a village clinic, e.g. ``王家庄村卫生室``."""
    return f"{short}卫生室" if short.endswith("村") else f"{short}村卫生室"
