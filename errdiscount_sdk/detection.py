"""Detection rules (pure, deterministic) and the backtest, public for servers and tools.

The same `Detector` runs in ``errdiscount-server`` (over the stored rollups) and in
``errdiscount backtest`` (over a file of events, with a virtual clock): docs/detection.md.
"""

from ._provider.backtest import BacktestResult, run_backtest
from ._provider.detection import Detector, counts_as_failure, episode_id, incident_id
from ._provider.detection_config import (
    DEFAULT_CLIENT_STATUSES,
    BurnRateSettings,
    BurnWindow,
    DetectionSettings,
    EpisodeSettings,
    IncidentSettings,
)
from ._provider.detection_events import from_event_line, from_event_mapping
from ._provider.detection_types import (
    ALL_ENDPOINTS,
    CompensationDecided,
    CompensationWithheld,
    Decision,
    EndpointDegraded,
    EndpointRecovered,
    EpisodeClosed,
    EpisodeOpened,
    IncidentClosed,
    IncidentOpened,
    Observation,
    OpenEpisode,
    OpenIncident,
)

__all__ = [
    "ALL_ENDPOINTS",
    "DEFAULT_CLIENT_STATUSES",
    "BacktestResult",
    "BurnRateSettings",
    "BurnWindow",
    "CompensationDecided",
    "CompensationWithheld",
    "Decision",
    "DetectionSettings",
    "Detector",
    "EndpointDegraded",
    "EndpointRecovered",
    "EpisodeClosed",
    "EpisodeOpened",
    "EpisodeSettings",
    "IncidentClosed",
    "IncidentOpened",
    "IncidentSettings",
    "Observation",
    "OpenEpisode",
    "OpenIncident",
    "counts_as_failure",
    "episode_id",
    "from_event_line",
    "from_event_mapping",
    "incident_id",
    "run_backtest",
]
