"""Wiring only: the overhead-study code location — the latest ``make bench`` report as an asset.

Kept apart from the default job so that ``dagster asset materialize -m pipelines.definitions
--select '*'`` never depends on a benchmark run having happened; ``make bench`` materializes this
location after writing its JSON, so the UI shows the latest figures.
"""

import dagster as dg

from pipelines.assets import bench
from pipelines.resources import config_from_env

defs = dg.Definitions(assets=dg.load_assets_from_modules([bench]), resources={"pinpoint": config_from_env()})
