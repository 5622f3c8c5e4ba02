"""cropglobe: crop-type classification from satellite time series that transfers across the globe.

Importing the package is quiet: no I/O, no device choice, no logging configuration.
"""

from cropglobe.classes import CROPGLOBE_CLASSES, CROPGLOBE_COUNTRIES
from cropglobe.errors import CropGlobeError
from cropglobe.series import SeriesSet, TimeGrid

__version__ = "0.1.0"

__all__ = [
    "CROPGLOBE_CLASSES",
    "CROPGLOBE_COUNTRIES",
    "CropGlobeError",
    "SeriesSet",
    "TimeGrid",
    "__version__",
]
