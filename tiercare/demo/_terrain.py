"""Synthetic loess-hill terrain for the demo county (a digital elevation model).

Model
-----
Elevation on a 3-arc-second WGS84 grid is the sum of

* a fractal surface: white noise filtered in the Fourier domain with amplitude spectrum
  ``(f² + f₀²)^(-β/4)`` (β = 3.4, f₀ = 1/30 km) and a Gaussian high cut at 1/600 m,
  i.e. power falling as ``f^-β`` like natural relief;
* ridged hills: ``1 - |b|`` of a band-passed noise ``b`` (sharp loess ridges, broad gullies);
* a regional tilt in a random direction;
* a main river valley through the county seat, ``-V exp(-(d/w)²)`` with ``d`` the distance to
  a meandering line ``y = y_s + A sin(2π(x - x_s)/L + φ) - A sin φ``;

then mapped linearly onto the calibrated elevation range (1,000–1,800 m for Shouyang) and
smoothed by a one-pixel Gaussian. Distances use a local equirectangular approximation (error
well under 1 % across a county), which is ample for synthetic relief.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from rasterio.transform import Affine
from scipy import ndimage

#: Pixel size: 3 arc-seconds (about 73 m × 93 m at 38° N).
RESOLUTION_DEG = 1.0 / 1200.0
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0


@dataclass(frozen=True)
class Terrain:
    """A north-up elevation grid in WGS84.

    Attributes
    ----------
    elevation:
        ``(rows, cols)`` float32 elevations in metres; row 0 is the northern edge.
    west, north:
        Longitude and latitude of the grid's outer north-west corner.
    resolution:
        Pixel size in degrees (square pixels).
    """

    elevation: NDArray[np.float32]
    west: float
    north: float
    resolution: float

    @property
    def transform(self) -> Affine:
        """The rasterio affine transform of the grid."""
        return Affine(self.resolution, 0.0, self.west, 0.0, -self.resolution, self.north)

    def sample(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
        """Bilinear elevation (m) at WGS84 points; outside the grid the edge value is used."""
        cols = (np.asarray(lon, dtype=float) - self.west) / self.resolution - 0.5
        rows = (self.north - np.asarray(lat, dtype=float)) / self.resolution - 0.5
        values = ndimage.map_coordinates(
            self.elevation.astype(np.float64), [np.atleast_1d(rows), np.atleast_1d(cols)],
            order=1, mode="nearest",
        )
        return np.asarray(values, dtype=np.float64)


def _spectral_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    spacing: tuple[float, float],
    *,
    beta: float,
    f_low: float,
    f_high: float,
) -> NDArray[np.float64]:
    """Zero-mean, unit-variance noise with a power-law spectrum (periodic; crop a margin)."""
    rows, cols = shape
    spectrum = np.fft.rfft2(rng.standard_normal(shape))
    fy = np.fft.fftfreq(rows, d=spacing[0])[:, None]
    fx = np.fft.rfftfreq(cols, d=spacing[1])[None, :]
    f2 = fx**2 + fy**2
    spectrum *= (f2 + f_low**2) ** (-beta / 4.0) * np.exp(-f2 / f_high**2)
    field = np.fft.irfft2(spectrum, s=shape)
    field -= field.mean()
    return np.asarray(field / field.std(), dtype=np.float64)


def build_terrain(
    rng: np.random.Generator,
    *,
    bounds: tuple[float, float, float, float],
    seat: tuple[float, float],
    elevation_range: tuple[float, float],
    margin_deg: float = 0.05,
) -> Terrain:
    """Generate the elevation grid covering ``bounds`` plus a margin.

    Parameters
    ----------
    rng:
        Random generator (all randomness of this step).
    bounds:
        ``(west, south, east, north)`` of the county in degrees.
    seat:
        ``(lon, lat)`` of the county seat: the main valley passes through it.
    elevation_range:
        ``(lowest, highest)`` elevation in metres of the grid.
    margin_deg:
        Margin added on every side, in degrees.

    Returns
    -------
    Terrain
        The grid, aligned on whole multiples of the resolution.
    """
    res = RESOLUTION_DEG
    west = np.floor((bounds[0] - margin_deg) / res) * res
    south = np.floor((bounds[1] - margin_deg) / res) * res
    east = np.ceil((bounds[2] + margin_deg) / res) * res
    north = np.ceil((bounds[3] + margin_deg) / res) * res
    cols = int(round((east - west) / res))
    rows = int(round((north - south) / res))
    lat0 = 0.5 * (south + north)
    dx = res * _M_PER_DEG_LON_EQUATOR * np.cos(np.radians(lat0))
    dy = res * _M_PER_DEG_LAT
    pad = 64
    shape = (rows + 2 * pad, cols + 2 * pad)
    crop = (slice(pad, pad + rows), slice(pad, pad + cols))
    fractal = _spectral_noise(rng, shape, (dy, dx), beta=3.6, f_low=1 / 50_000, f_high=1 / 500)
    band = _spectral_noise(rng, shape, (dy, dx), beta=1.0, f_low=1 / 8_000, f_high=1 / 2_000)
    fractal, band = fractal[crop], band[crop]
    ridged = 1.0 - np.abs(band)
    ridged = (ridged - ridged.mean()) / ridged.std()

    x = (west + (np.arange(cols) + 0.5) * res - seat[0]) / res * dx
    y = (north - (np.arange(rows) + 0.5) * res - seat[1]) / res * dy
    xx, yy = np.meshgrid(x, y)
    tilt_angle = rng.uniform(0.0, 2.0 * np.pi)
    tilt = (xx * np.cos(tilt_angle) + yy * np.sin(tilt_angle)) / 30_000.0
    amplitude, wavelength = rng.uniform(2_000.0, 4_000.0), rng.uniform(15_000.0, 25_000.0)
    phase, heading = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(-0.3, 0.3)
    along = xx * np.cos(heading) + yy * np.sin(heading)
    across = -xx * np.sin(heading) + yy * np.cos(heading)
    river = amplitude * (np.sin(2.0 * np.pi * along / wavelength + phase) - np.sin(phase))
    valley = np.exp(-(((across - river) / 4_000.0) ** 2))

    relief = fractal + 0.2 * ridged + 0.8 * tilt - 2.2 * valley
    low, high = elevation_range
    relief = (relief - relief.min()) / (relief.max() - relief.min())
    elevation = ndimage.gaussian_filter(low + (high - low) * relief, sigma=1.0)
    return Terrain(
        elevation=elevation.astype(np.float32), west=float(west), north=float(north),
        resolution=res,
    )
