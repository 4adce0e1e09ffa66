"""Special files and hostile manifests (issue 14, item 1): a symlink to /dev/zero, a FIFO, a
manifest that names files outside its cloud assembly. Each must end promptly with a one-line
error, exit 2, and the other templates still judged. The CLI runs in a subprocess with a timeout
so that a regression (a read that never ends, an open that blocks) fails instead of hanging."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPEN_TOPIC = {"Type": "AWS::SNS::Topic", "Properties": {}}  # no KMS key: at least one violation
needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def dpguard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DPGUARD_SIGNING_KEY", None)
    try:
        return subprocess.run([sys.executable, "-m", "dpguard.cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dpguard {' '.join(args)} did not end within 60 s")


def scan_json(*paths: str, cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    done = dpguard("scan", *paths, "--format", "json", cwd=cwd)
    assert "Traceback" not in done.stderr, done.stderr
    return done, json.loads(done.stdout) if done.stdout.strip() else {}


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def judged_templates(report: dict) -> set[str]:
    return {Path(f["template"]).name for f in report.get("findings", [])}


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def assembly(root: Path, **stack_props) -> Path:
    """A one-stack cloud assembly whose stack artifact gets `stack_props` (templateFile etc.),
    beside a good stack that must still be judged."""
    out = root / "cdk.out"
    good = {"type": "aws:cloudformation:stack", "properties": {"templateFile": "Good.template.json"}}
    odd = {"type": "aws:cloudformation:stack",
           "properties": {"templateFile": stack_props.pop("templateFile", "Odd.template.json")}, **stack_props}
    write_json(out / "manifest.json", {"version": "48.0.0", "artifacts": {"Good": good, "Odd": odd}})
    write_json(out / "Good.template.json", {"Resources": {"Topic": OPEN_TOPIC}})
    write_json(out / "Odd.template.json", {"Resources": {"Topic": OPEN_TOPIC}})
    return out


# ---------------------------------------------------------------- folders and named files

@needs_dev_zero
def test_symlink_to_dev_zero_in_a_folder_is_skipped_with_one_line_and_the_rest_judged(tmp_path):
    (tmp_path / "template.json").symlink_to("/dev/zero")
    write_json(tmp_path / "good.json", {"Resources": {"Topic": OPEN_TOPIC}})
    done, report = scan_json(".", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard: error: template.json: is a character device, not a regular file: skipped"]
    assert judged_templates(report) == {"good.json"}


@needs_fifo
def test_fifo_in_a_folder_is_skipped_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    write_json(tmp_path / "good.json", {"Resources": {"Topic": OPEN_TOPIC}})
    done, report = scan_json(".", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard: error: pipe.yaml: is a FIFO (named pipe), not a regular file: skipped"]
    assert judged_templates(report) == {"good.json"}


@needs_fifo
@needs_dev_zero
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_named_special_file_is_a_one_line_error(tmp_path, kind):
    if kind == "fifo":
        os.mkfifo(tmp_path / "named.json")
        what = "a FIFO (named pipe)"
    else:
        (tmp_path / "named.json").symlink_to("/dev/zero")
        what = "a character device"
    write_json(tmp_path / "good.json", {"Resources": {"Topic": OPEN_TOPIC}})
    done, report = scan_json("named.json", "good.json", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == [f"dpguard: error: named.json: is {what}, not a regular file: not read"]
    assert judged_templates(report) == {"good.json"}


@needs_dev_zero
def test_a_config_file_that_is_dev_zero_is_a_one_line_error(tmp_path):
    write_json(tmp_path / "good.json", {"Resources": {"Topic": OPEN_TOPIC}})
    done = dpguard("scan", "good.json", "--config", "/dev/zero", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard: error: /dev/zero: is a character device, not a regular file: not read"]


def test_a_file_over_the_byte_limit_is_refused_by_what_is_read(tmp_path, monkeypatch):
    """The limit counts bytes read, not st_size (0 for /proc files, devices and pipes)."""
    from dpguard.engine import loader

    path = write_json(tmp_path / "big.json", {"Resources": {"Topic": OPEN_TOPIC}, "Pad": "x" * 200})
    monkeypatch.setattr(loader.os, "fstat", lambda fd, real=os.fstat: _zero_size(real(fd)))
    with pytest.raises(loader.InputError, match="larger than the limit of 100 bytes"):
        loader.read_capped(path, 100)
    assert loader.read_capped(path, 10_000) == path.read_bytes()


def _zero_size(result: os.stat_result) -> os.stat_result:
    fields = list(result)
    fields[6] = 0  # st_size, as a device or /proc file reports it
    return os.stat_result(fields)


# ---------------------------------------------------------------- cloud assembly manifests

@pytest.mark.parametrize("template_file", ["../../../../../../etc/passwd", "/etc/passwd", "link.json"])
def test_manifest_template_file_outside_the_assembly_is_refused_naming_the_manifest(tmp_path, template_file):
    outside = write_json(tmp_path / "elsewhere" / "t.json", {"Resources": {"Topic": OPEN_TOPIC}})
    out = assembly(tmp_path, templateFile=template_file)
    (out / "link.json").symlink_to(outside)
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    [line] = error_lines(done)
    assert line.startswith("dpguard: error: cdk.out/manifest.json: artifact Odd: templateFile ")
    assert "absolute path" in line if template_file.startswith("/") else "leads outside the cloud assembly" in line
    assert judged_templates(report) == {"Good.template.json"}  # the other stack is still judged
    assert "passwd" not in json.dumps(report.get("findings"))


def test_nested_assembly_directory_outside_the_assembly_is_refused(tmp_path):
    write_json(tmp_path / "other" / "manifest.json", {"artifacts": {"X": {
        "type": "aws:cloudformation:stack", "properties": {"templateFile": "X.template.json"}}}})
    write_json(tmp_path / "other" / "X.template.json", {"Resources": {"Topic": OPEN_TOPIC}})
    out = assembly(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artifacts"]["Stage"] = {"type": "cdk:cloud-assembly", "properties": {"directoryName": "../other"}}
    write_json(out / "manifest.json", manifest)
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    [line] = error_lines(done)
    assert line.startswith("dpguard: error: cdk.out/manifest.json: artifact Stage: directoryName '../other' "
                           "leads outside the cloud assembly")
    assert judged_templates(report) == {"Good.template.json", "Odd.template.json"}


@needs_dev_zero
def test_manifest_template_file_linked_to_dev_zero_is_refused(tmp_path):
    out = assembly(tmp_path, templateFile="Zero.template.json")
    (out / "Zero.template.json").symlink_to("/dev/zero")
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    [line] = error_lines(done)
    assert line.startswith("dpguard: error: cdk.out/manifest.json: artifact Odd: templateFile 'Zero.template.json'")
    assert judged_templates(report) == {"Good.template.json"}


@needs_dev_zero
def test_additional_metadata_file_that_is_dev_zero_is_refused(tmp_path):
    out = assembly(tmp_path, additionalMetadataFile="Odd.metadata.json")
    (out / "Odd.metadata.json").symlink_to("/dev/zero")
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    [line] = error_lines(done)
    assert line.startswith("dpguard: error: cdk.out/manifest.json: artifact Odd: additionalMetadataFile "
                           "'Odd.metadata.json' leads outside the cloud assembly")
    assert judged_templates(report) == {"Good.template.json", "Odd.template.json"}  # without construct paths


@needs_fifo
def test_additional_metadata_file_that_is_a_fifo_inside_the_assembly_is_refused(tmp_path):
    out = assembly(tmp_path, additionalMetadataFile="Odd.metadata.json")
    os.mkfifo(out / "Odd.metadata.json")
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard: error: cdk.out/Odd.metadata.json: is a FIFO (named pipe), "
                                 "not a regular file: not read"]
    assert judged_templates(report) == {"Good.template.json", "Odd.template.json"}


@needs_dev_zero
@needs_fifo
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_assets_manifest_that_is_special_is_refused_and_the_stacks_still_judged(tmp_path, kind):
    out = assembly(tmp_path)
    if kind == "fifo":
        os.mkfifo(out / "Good.assets.json")
    else:
        (out / "Good.assets.json").symlink_to("/dev/zero")
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    [line] = error_lines(done)
    assert line.startswith("dpguard: error: cdk.out/Good.assets.json: is a ")
    assert judged_templates(report) == {"Good.template.json", "Odd.template.json"}


@needs_dev_zero
def test_nested_stack_template_linked_to_dev_zero_is_refused(tmp_path):
    out = assembly(tmp_path)
    (out / "GoodChild.nested.template.json").symlink_to("/dev/zero")
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard: error: cdk.out/GoodChild.nested.template.json: is a character device, "
                                 "not a regular file: not read"]
    assert judged_templates(report) == {"Good.template.json", "Odd.template.json"}


def test_a_healthy_assembly_with_metadata_and_assets_files_still_loads(tmp_path):
    out = assembly(tmp_path, additionalMetadataFile="Odd.metadata.json")
    write_json(out / "Odd.metadata.json", {"/Odd/Topic/Resource": [{"type": "aws:cdk:logicalId", "data": "Topic"}]})
    write_json(out / "Good.assets.json", {"files": {}})
    done, report = scan_json("cdk.out", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    paths = {f["construct_path"] for f in report["findings"] if f["template"].endswith("Odd.template.json")}
    assert paths == {"Odd/Topic/Resource"}


# ---------------------------------------------------------------- data-request verify

@needs_dev_zero
def test_verify_dev_zero_returns_promptly_with_one_line(tmp_path):
    done = dpguard("data-request", "verify", "/dev/zero", "--key-id", "arn:aws:kms:eu-west-1:1:key/k", cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard data-request verify: /dev/zero: is a character device, "
                                 "not a regular file: not read"]


@needs_fifo
def test_verify_a_fifo_returns_promptly_with_one_line(tmp_path):
    os.mkfifo(tmp_path / "confirmation.json")
    done = dpguard("data-request", "verify", "confirmation.json", "--key-id", "arn:aws:kms:eu-west-1:1:key/k",
                   cwd=tmp_path)
    assert done.returncode == 2
    assert error_lines(done) == ["dpguard data-request verify: confirmation.json: is a FIFO (named pipe), "
                                 "not a regular file: not read"]


def test_the_auditor_report_skips_special_files_among_saved_results(tmp_path):
    folder = tmp_path / "audits"
    folder.mkdir()
    write_json(folder / "scan.json", {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}}})
    os.mkfifo(folder / "results.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    done = dpguard("report", str(folder), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert "Traceback" not in done.stderr
    problems = json.loads((tmp_path / "out" / "dpguard-report.json").read_text())["evidence"]["problems"]
    assert any("results.json" in p and "FIFO" in p for p in problems)
    assert any("zero.json" in p and "not a regular file" in p for p in problems)


def test_secret_exposed_reads_its_parties_file_capped(tmp_path):
    done = dpguard("secret-exposed", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "--reason",
                   "pasted into a ticket", "--parties-file", "/dev/zero", "--incident-table", "t",
                   "--alerts-topic", "arn:aws:sns:us-east-1:123456789012:alerts", cwd=tmp_path)
    assert done.returncode == 2 and "not a regular file" in done.stderr and "Traceback" not in done.stderr
