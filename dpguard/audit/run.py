"""Run the collectors over accounts and regions (concurrently, with a bound), then judge the live
templates with the catalogue: the same rules, ids and clauses as `dpguard scan`."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..engine import Config, evaluate
from ..engine.evaluate import Report
from ..engine.findings import UNVERIFIABLE, Finding
from ..engine.template import App
from ..rules import catalogue
from .clients import Clients
from .collectors import GLOBAL, Collector, collectors
from .live import GAP, LIVE, LiveTemplate, apply_acknowledgments  # noqa: F401 - GAP for access_review

# Rules whose control is about how a template is written, or that judge an app as a whole: what
# they ask of a live account is checked by live rules (dpguard/rules/live.py) or not at all.
TEMPLATE_ONLY = frozenset({"DP-TemplateProcessed", "DP-ResourceReadable", "DP-SecurityAlertPath"})


@dataclass
class AuditFinding(Finding):
    arn: str | None = None
    region: str | None = None
    account: str | None = None

    def as_dict(self) -> dict:  # Finding.as_dict names only its own fields
        return {**super().as_dict(), "arn": self.arn, "region": self.region, "account": self.account}

    @property
    def locator(self) -> str | None:
        return self.arn or self.construct_path


@dataclass
class NotAudited:
    """An account named for the audit that could not be reached (its role could not be assumed)."""

    account: str
    reason: str


@dataclass
class AuditResult:
    report: Report
    app: App  # the live templates, one per account and region ("global" for IAM and S3)
    calls: dict[str, int] = field(default_factory=dict)  # API operation -> times called

    @property
    def incomplete(self) -> bool:
        return any(f.status == UNVERIFIABLE for f in self.report.findings)


def audit(accounts: list[Clients | NotAudited], regions: list[str], *, config: Config | None = None,
          only: set[str] | None = None, concurrency: int = 8,
          progress: Callable[[int, int], None] | None = None, deadline: float | None = None) -> AuditResult:
    """Collect every account in every region, then judge. `only` names collectors to run. An
    account that could not be reached, and what is not read within `deadline` seconds, are gaps
    (DP-AuditComplete, unverifiable): the rest is judged all the same."""
    config = config or Config()
    chosen = [c for c in collectors() if only is None or c.name in only]
    lives: dict[tuple[str, str], LiveTemplate] = {}
    tasks: list[tuple[Clients, Collector, str, LiveTemplate]] = []
    for clients in accounts:
        if isinstance(clients, NotAudited):
            live = lives.setdefault((clients.account, GLOBAL), LiveTemplate(clients.account, GLOBAL))
            live.gap(f"account {clients.account} was not audited: {clients.reason}")
            continue
        try:
            account = clients.account
        except Exception as e:  # noqa: BLE001 - an account we cannot even name is a gap, not a crash
            live = lives.setdefault(("unknown", GLOBAL), LiveTemplate("unknown", GLOBAL))
            live.gap(f"the account could not be identified (sts:GetCallerIdentity): {e}")
            continue
        for c in chosen:
            for region in ([regions[0]] if c.scope == GLOBAL else regions):
                where = GLOBAL if c.scope == GLOBAL else region
                live = lives.setdefault((account, where), LiveTemplate(account, where))
                tasks.append((clients, c, region, live))
    for clients, c, region, live in _run_late(tasks, concurrency, deadline, progress):
        live.close(f"{c.name} in {region} was not read within the audit's deadline of {deadline:g} s")
    apply_acknowledgments(list(lives.values()))
    app = App(trust_parameter_defaults=False)
    for (account, region), live in sorted(lives.items()):
        app.add(f"aws://{account}/{region}", live.as_template(), f"{account}/{region}", live=True)
    config = Config(**{**asdict(config), "disabled_rules": config.disabled_rules | TEMPLATE_ONLY})
    report = evaluate(app, config, catalogue())
    report.findings = [_with_location(f, app) for f in report.findings]
    calls: dict[str, int] = {}
    for clients in accounts:
        if isinstance(clients, NotAudited):
            continue
        for operation, n in clients.calls.items():
            calls[operation] = calls.get(operation, 0) + n
    return AuditResult(report, app, calls)


def _run_late(tasks: list, concurrency: int, deadline: float | None,
              progress: Callable[[int, int], None] | None) -> list:
    """Run the collection tasks on `concurrency` daemon threads; return those not finished by the
    deadline. Daemon threads, because a reader stuck past the deadline must not keep the process
    from reporting and exiting; its live template is closed, so it writes nothing after that."""
    pending: queue.Queue = queue.Queue()
    for task in tasks:
        pending.put(task)
    finished: set[int] = set()
    lock = threading.Condition()

    def worker() -> None:
        while True:
            try:
                task = pending.get_nowait()
            except queue.Empty:
                return
            _collect(*task)
            with lock:
                finished.add(id(task))
                lock.notify_all()

    for _ in range(max(1, min(concurrency, len(tasks)))):
        threading.Thread(target=worker, daemon=True).start()
    end = None if deadline is None else time.monotonic() + deadline
    with lock:
        while len(finished) < len(tasks):
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            lock.wait(timeout=remaining)
            if progress:
                progress(len(finished), len(tasks))
        while not pending.empty():  # what no reader has started by the deadline is not started
            try:
                pending.get_nowait()
            except queue.Empty:
                break
        return [task for task in tasks if id(task) not in finished]


def _collect(clients: Clients, c: Collector, region: str, live: LiveTemplate) -> None:
    try:
        c.collect(clients, region, live)
    except Exception as e:  # noqa: BLE001 - a collector that breaks leaves a gap, never a crash
        live.gap(f"{c.name} in {region} could not be collected: {type(e).__name__}: {e}")


def _with_location(f: Finding, app: App) -> AuditFinding:
    tpl = next(t for t in app.templates if t.path == f.template)
    resource = tpl.resources.get(f.logical_id) if f.logical_id else None
    where = resource.metadata.get(LIVE, {}) if resource is not None else {}
    return AuditFinding(**asdict(f), arn=where.get("arn"), region=where.get("region"),
                        account=where.get("account"))
