"""Run the collectors over accounts and regions (concurrently, with a bound), then judge the live
templates with the catalogue: the same rules, ids and clauses as `dpguard scan`."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..engine import Config, evaluate
from ..engine.evaluate import Report
from ..engine.findings import UNVERIFIABLE, Finding
from ..engine.template import App
from .clients import Clients
from .collectors import GLOBAL, Collector, collectors
from .live import LIVE, LiveTemplate, apply_acknowledgments

# Rules whose control is about how a template is written, or that judge an app as a whole: what
# they ask of a live account is checked by live rules (dpguard/rules/live.py) or not at all.
TEMPLATE_ONLY = frozenset({"DP-TemplateProcessed", "DP-ResourceReadable", "DP-SecurityAlertPath"})
GAP = "Live::Audit::Gap"  # a check that could not run: judged by DP-AuditComplete


@dataclass
class AuditFinding(Finding):
    arn: str | None = None
    region: str | None = None
    account: str | None = None

    @property
    def locator(self) -> str | None:
        return self.arn or self.construct_path


@dataclass
class AuditResult:
    report: Report
    app: App  # the live templates, one per account and region ("global" for IAM and S3)
    calls: dict[str, int] = field(default_factory=dict)  # API operation -> times called

    @property
    def incomplete(self) -> bool:
        return any(f.status == UNVERIFIABLE for f in self.report.findings)


def audit(accounts: list[Clients], regions: list[str], *, config: Config | None = None,
          only: set[str] | None = None, concurrency: int = 8,
          progress: Callable[[int, int], None] | None = None) -> AuditResult:
    """Collect every account in every region, then judge. `only` names collectors to run."""
    config = config or Config()
    chosen = [c for c in collectors() if only is None or c.name in only]
    lives: dict[tuple[str, str], LiveTemplate] = {}
    tasks: list[tuple[Clients, Collector, str, LiveTemplate]] = []
    for clients in accounts:
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
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(_collect, *task): task for task in tasks}
        for future in as_completed(futures):
            future.result()
            done += 1
            if progress:
                progress(done, len(tasks))
    apply_acknowledgments(list(lives.values()))
    app = App(trust_parameter_defaults=False)
    for (account, region), live in sorted(lives.items()):
        for reason in live.gaps:
            live.add("Gap", GAP, {"Reason": reason}, arn=f"arn:aws:::{account}", region=region)
        app.add(f"aws://{account}/{region}", live.as_template(), f"{account}/{region}", live=True)
    config = Config(**{**asdict(config), "disabled_rules": config.disabled_rules | TEMPLATE_ONLY})
    report = evaluate(app, config)
    report.findings = [_with_location(f, app) for f in report.findings]
    calls: dict[str, int] = {}
    for clients in accounts:
        for operation, n in clients.calls.items():
            calls[operation] = calls.get(operation, 0) + n
    return AuditResult(report, app, calls)


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
