"""GuardDuty (regional): the region's detector and whether it is enabled, as a
`Live::GuardDuty::Detector` for DP-GuardDutyEnabled. A region without a detector gets one
without a Status (judged "no detector"); a listing that fails gets an unreadable Status, so that
the rule, not only the audit's completeness, reports that GuardDuty could not be verified."""
from __future__ import annotations

from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, unreadable
from . import collector
from .iam import partition

DETECTOR = "Live::GuardDuty::Detector"


@collector("guardduty")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    gd = clients("guardduty", region)
    base = f"arn:{partition(region)}:guardduty:{region}:{live.account}:detector"
    detectors = listing(gd, "list_detectors", "DetectorIds")
    if isinstance(detectors, Unreadable):
        live.add("guard duty", DETECTOR, {"Status": unreadable(detectors.reason)}, arn=base)
        return
    if not detectors:
        live.add("guard duty", DETECTOR, {}, arn=base)
        return
    for detector_id in detectors:
        answer = read(lambda: gd.get_detector(DetectorId=detector_id))
        if isinstance(answer, Unreadable):
            props = {"DetectorId": detector_id, "Status": unreadable(answer.reason)}
        else:
            props = {"DetectorId": detector_id, "Status": answer.get("Status"),
                     "FindingPublishingFrequency": answer.get("FindingPublishingFrequency"),
                     "Features": [{"Name": f.get("Name"), "Status": f.get("Status")}
                                  for f in answer.get("Features", [])] or None}
        live.add("guard duty", DETECTOR, {k: v for k, v in props.items() if v is not None},
                 arn=f"{base}/{detector_id}")
