"""The auditor's HTML report: escaping and self-containment as plain unit tests, then the page
itself in headless Chromium (Debian's package, which ./dev installs), the way an auditor sees it.

The browser test fails, never skips, when Chromium is missing: a report nobody looked at in a
browser is exactly the gap this test exists to close, and CI installs Chromium through ./dev."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from dpguard.output.html_report import render_html

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "report" / "sample-report.json"
SCREENSHOT = ROOT / "tests" / "output" / "report.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture
def sample(sample_bytes) -> dict:
    return json.loads(sample_bytes)


@pytest.fixture(scope="module")
def sample_sha256(sample_bytes) -> str:
    return hashlib.sha256(sample_bytes).hexdigest()


# ------------------------------------------------------------------ the sample data file


def test_sample_covers_what_the_report_must_show(sample):
    """The sample is hand-written: keep it honest about the cases the browser test relies on."""
    assert sample["schema"] == "dpguard-report/1"
    assert [c["number"] for c in sample["clauses"]] == list(range(1, 12))
    eleven = sample["clauses"][10]
    assert eleven["automated"] is False and eleven["status"] == "process" and eleven["controls"] == []
    statuses = {f["status"] for f in sample["findings"]}
    assert statuses == {"violation", "unverifiable", "acknowledged"}
    assert {f["source"] for f in sample["findings"]} == {"dpguard", "AwsSolutions"}
    acks = {a["status"] for a in sample["acknowledgments"]}
    assert {"holds", "expired"} <= acks
    assert any(a["status"] == "holds" and a["ticket"] for a in sample["acknowledgments"])
    assert any(a["source"] == "AwsSolutions" for a in sample["acknowledgments"])
    assert sample["nag"] and sample["nag"][0]["violations"] and sample["nag"][0]["acknowledged"]
    dpguard = [f for f in sample["findings"] if f["source"] == "dpguard"]
    s = sample["summary"]
    for key in ("violation", "unverifiable", "acknowledged"):
        total = s["violations" if key == "violation" else key]
        assert total == sum(f["status"] == key for f in dpguard)
        assert total == sum(c[key + "s" if key == "violation" else key]
                            for clause in sample["clauses"] for c in clause["controls"])
    for clause in sample["clauses"]:
        for c in clause["controls"]:
            assert c["evaluated"] == c["passed"] + c["violations"] + c["acknowledged"] + c["unverifiable"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", i["sha256"]) for i in sample["evidence"]["inputs"])


# ------------------------------------------------------------------------- plain HTML


def test_every_value_is_escaped(sample, sample_sha256):
    """Templates come from untrusted pull requests: no value may become markup."""
    data = copy.deepcopy(sample)
    f = data["findings"][0]
    f["construct_path"] = f"Orders-Api/{HOSTILE}/Resource"
    f["message"] = f"bad {HOSTILE}"
    f["stack"] = '"><img src=x onerror=alert(1)>'
    f["rule_id"] = 'DP-X" onmouseover="alert(1)'
    data["acknowledgments"][0]["reason"] = HOSTILE
    data["acknowledgments"][0]["ticket"] = "<b>T-1</b>"
    data["clauses"][0]["title"] = HOSTILE
    data["clauses"][0]["process_controls"] = [HOSTILE]
    data["evidence"]["inputs"][0]["path"] = f"cdk.out/{HOSTILE}.json"
    data["evidence"]["problems"] = [HOSTILE]
    data["evidence"]["versions"][HOSTILE] = HOSTILE
    data["acknowledgments"][1]["reason"] = "see https://wiki.example.com/x and http://evil.example/a.js"
    page = render_html(data, sample_sha256)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower() and "<b>" not in page
    assert 'onmouseover="' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Orders-Api/&lt;script&gt;alert(1)&lt;/script&gt;/Resource" in page
    assert 'data-rule="DP-X&quot; onmouseover=&quot;alert(1)"' in page
    assert "see https://wiki.example.com/x" in page  # shown as text...
    assert not re.search(r'(src|href)\s*=\s*"?https?:', page)  # ...never a link or a resource


def test_page_is_self_contained(sample, sample_sha256):
    page = render_html(sample, sample_sha256)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    # Nothing to fetch: no external src/href, no stylesheet links, no fonts, no scripts.
    for attr, value in re.findall(r'\b(src|href|action|poster|data)\s*=\s*"([^"]*)"', page):
        assert value.startswith("#"), f"{attr}={value!r} would leave the page"
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.I)
    assert "@import" not in page and "url(" not in page and "@font-face" not in page
    assert "default-src 'none'" in page
    assert "@media print" in page


def test_page_shows_the_facts(sample, sample_sha256):
    page = render_html(sample, sample_sha256)
    assert "Data Protection Policy — compliance report" in page
    for n in range(1, 12):
        assert f'data-clause="{n}"' in page and f'id="clause-{n}"' in page
    for anchor in ('id="coverage-matrix"', 'id="findings"', 'id="acknowledgments"', 'id="evidence"'):
        assert anchor in page
    assert page.index('id="coverage-matrix"') < page.index('id="findings"') \
        < page.index('id="acknowledgments"') < page.index('id="nag"') < page.index('id="evidence"')
    assert sample_sha256 in page
    for i in sample["evidence"]["inputs"]:
        assert i["sha256"] in page
    assert "Not compliant" in page
    assert page.count("Process control") >= 2


def test_verdicts(sample, sample_sha256):
    clean = copy.deepcopy(sample)
    clean["summary"].update(violations=0, unverifiable=0, nag_violations=0, expired_acknowledgments=0)
    for c in clean["clauses"]:
        c["status"] = "acknowledged" if c["status"] == "fail" else c["status"]
    clean["evidence"]["problems"] = []
    assert "Compliant with acknowledgments" in render_html(clean, sample_sha256)
    clean["evidence"]["problems"] = ["cdk.out/x.json: not found"]
    assert "evidence is incomplete" in render_html(clean, sample_sha256)
    clean["evidence"]["problems"] = []
    clean["summary"].update(acknowledged=0, nag_acknowledged=0)
    assert "✓ Compliant</strong>" in render_html(clean, sample_sha256)


def test_missing_and_unknown_values_render(sample, sample_sha256):
    """Counts the data could not know (a saved scan has no per-rule totals), a finding without
    construct path or clause, no git, no nag: all shown as such, never a crash."""
    data = copy.deepcopy(sample)
    data["clauses"][0]["controls"][0]["evaluated"] = None
    data["clauses"][0]["controls"][0]["passed"] = None
    data["findings"].append({**data["findings"][0], "clause": None, "construct_path": None,
                             "source": "AwsSolutions", "rule_id": "AwsSolutions-L1"})
    data["evidence"]["git"] = None
    data["nag"] = []
    page = render_html(data, "0" * 64)
    assert 'title="not counted"' in page
    assert "Not mapped to a clause" in page
    assert "not recorded" in page
    assert "No cdk-nag pack results were read" in page
    assert render_html({}, "").count("<section") >= 6


# -------------------------------------------------------------------------- in Chromium


def chromium_path() -> str:
    """Debian's Chromium, or DPGUARD_CHROMIUM for another Chrome/Chromium binary."""
    override = os.environ.get("DPGUARD_CHROMIUM")
    for candidate in ([override] if override else ["/usr/bin/chromium", shutil.which("chromium")]):
        if candidate and Path(candidate).is_file():
            return candidate
    where = f"DPGUARD_CHROMIUM={override} does not exist" if override else "Chromium is not installed"
    pytest.fail(f"{where} (needed for the HTML report's browser test): run ./dev setup, or as root "
                "apt-get install -y --no-install-recommends chromium", pytrace=False)


class Chromium:
    """Launched on first use, inside a test, so that a missing browser fails that test with the
    message above (a fixture error would read as a broken test suite)."""

    def __init__(self):
        self.playwright = self.browser = None

    def get(self):
        if self.browser is None:
            executable = chromium_path()
            try:
                from playwright.sync_api import sync_playwright
            except ImportError:
                pytest.fail("Playwright for Python is missing: run ./dev setup "
                            "(or pip install -r requirements-dev.txt)", pytrace=False)
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(executable_path=executable, headless=True,
                                                           args=CHROMIUM_ARGS)
        return self.browser

    def close(self):
        if self.browser is not None:
            self.browser.close()
            self.playwright.stop()


@pytest.fixture(scope="module")
def chromium():
    launcher = Chromium()
    yield launcher
    launcher.close()


class Pages:
    """Opens rendered HTML in a fresh context with JavaScript off (the page must not need it) and
    records every request the pages make."""

    def __init__(self, chromium: Chromium, tmp_path: Path):
        self.chromium, self.tmp_path, self.requests, self.contexts = chromium, tmp_path, [], []

    def open(self, html: str, name: str = "report.html"):
        path = self.tmp_path / name
        path.write_text(html, encoding="utf-8")
        context = self.chromium.get().new_context(viewport={"width": 1360, "height": 900},
                                                  java_script_enabled=False)
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        return page

    def assert_offline(self):
        assert self.requests and all(url.startswith("file:") for url in self.requests), \
            f"the report made requests beyond its own file: {self.requests}"


@pytest.fixture
def pages(chromium, tmp_path):
    opened = Pages(chromium, tmp_path)
    yield opened
    for context in opened.contexts:
        context.close()


def test_report_in_chromium(pages, sample, sample_sha256, tmp_path):
    from playwright.sync_api import expect

    page = pages.open(render_html(sample, sample_sha256))
    expect(page).to_have_title(re.compile("Data Protection Policy — compliance report"))
    expect(page.locator("h1")).to_have_text("Data Protection Policy — compliance report")

    matrix = page.locator("#coverage-matrix")
    expect(matrix).to_be_visible()
    rows = matrix.locator("tbody tr[data-clause]")
    expect(rows).to_have_count(11)
    for n in range(1, 12):
        expect(matrix.locator(f'tr[data-clause="{n}"]')).to_be_visible()
    eleven = matrix.locator('tr[data-clause="11"]')
    expect(eleven).to_contain_text("Communication")
    expect(eleven.locator(".badge")).to_have_text(re.compile("Process control"))
    expect(eleven).to_contain_text("not automated")
    expect(matrix.locator('tr[data-clause="1"] .badge')).to_have_text(re.compile("Fail"))
    expect(matrix.locator('tr[data-clause="1"]')).to_contain_text("DP-SgOpenIngress")

    finding = page.locator("#findings tr.finding[data-rule='DP-SgOpenIngress']")
    expect(finding).to_be_visible()
    expect(finding).to_contain_text("Violation")
    group = page.locator("#findings tbody", has=page.locator("tr.finding[data-rule='DP-SgOpenIngress']"))
    expect(group.locator("tr.group")).to_contain_text("Orders-Api/Service/LB/SecurityGroup/Resource")
    expect(group.locator("tr.group")).to_be_visible()

    held = page.locator("#acknowledgments tr.ack-holds", has_text="SEC-1423")
    expect(held).to_be_visible()
    expect(held).to_contain_text("DP-ConfidentialDataCmk")
    expect(held).to_contain_text("S3 server access logging cannot deliver to a bucket encrypted with SSE-KMS")
    expect(held).to_contain_text("2027-03-31")
    expired = page.locator("#acknowledgments tr.ack-expired")
    expect(expired).to_be_visible()
    expect(expired.locator(".badge")).to_have_text(re.compile("Expired"))
    expect(expired).to_contain_text("2026-10-31 (expired)")
    expect(expired).to_contain_text("SEC-1377")

    evidence = page.locator("#evidence")
    expect(evidence.locator("#data-sha256")).to_be_visible()
    expect(evidence.locator("#data-sha256")).to_contain_text(sample_sha256)
    first_input = sample["evidence"]["inputs"][0]
    expect(evidence.locator("tr", has_text=first_input["path"])).to_contain_text(first_input["sha256"])
    expect(evidence.locator("#evidence-problems")).to_be_visible()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    shutil.copyfile(tmp_path / "report.png", SCREENSHOT)
    print(f"\nscreenshot: {SCREENSHOT} (and {tmp_path / 'report.png'})")
    pages.assert_offline()


def test_report_prints_readably(pages, sample, sample_sha256, tmp_path):
    """On paper: sections collapsed on screen print expanded, and status survives without the
    background colours that printers drop."""
    from playwright.sync_api import expect

    collapsed = render_html(sample, sample_sha256).replace("<details open>", "<details>")
    page = pages.open(collapsed)
    controls = page.locator("#clause-1 table.controls")
    expect(controls).to_be_hidden()
    page.emulate_media(media="print")
    expect(controls).to_be_visible()
    expect(page.locator("#coverage-matrix tr[data-clause='11'] .badge")).to_have_text(re.compile("Process control"))
    background = page.locator("#coverage-matrix tr[data-clause='1'] .badge").evaluate(
        "b => getComputedStyle(b).backgroundColor")
    assert background in ("rgba(0, 0, 0, 0)", "transparent")
    page.pdf(path=str(tmp_path / "report.pdf"), prefer_css_page_size=True)
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
    pages.assert_offline()
