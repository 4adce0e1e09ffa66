"""The pull-request integrations as CI runs them: the GitHub Action's steps (action.yml), the
pre-commit hook (.pre-commit-hooks.yaml) and the GitLab job of docs/ci.md, each run in a shell
on a repository made for the test. What needs the network is not run: the action's
`pip install` of its checkout, pre-commit's building of the hook's environment, the GitLab
job's `pip install`; the commands after them run with this checkout's dpguard."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = {step.get("id"): step for step in ACTION["runs"]["steps"]}

# written for this test: a CDK app with an unencrypted queue (DP-SqsEncrypted) on line 9
APP = """\
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs


class Orders(cdk.Stack):
    def __init__(self, scope, id):
        super().__init__(scope, id)
        self.template_options.description = "orders"
        sqs.Queue(self, "Jobs")


app = cdk.App()
Orders(app, "Orders")
app.synth()
"""
QUEUE_LINE = 9


def shell_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DPGUARD"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION="1",
               CDK_DISABLE_VERSION_CHECK="1", **extra)
    return env


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


# ---------------------------------------------------------------- the GitHub Action

def expression(text: str, inputs: dict, outputs: dict) -> str:
    """The `${{ inputs.x }}` and `${{ steps.s.outputs.y }}` of action.yml, as GitHub fills them."""
    def value(match: re.Match) -> str:
        name = match[1].strip()
        if name.startswith("inputs."):
            key = name.removeprefix("inputs.")
            return inputs.get(key, ACTION["inputs"][key].get("default", ""))
        step, _, key = name.removeprefix("steps.").partition(".outputs.")
        return outputs.get(step, {}).get(key, "")
    return re.sub(r"\$\{\{(.*?)\}\}", value, str(text))


def run_action(repo: Path, tmp: Path, **inputs) -> tuple[dict, dict]:
    """Run the action's shell steps in order, as the runner does, with this checkout's dpguard
    (the install step needs the network). Returns each step's exit code and outputs."""
    outputs: dict[str, dict] = {}
    codes: dict[str, int] = {}
    summary = tmp / "summary.md"
    for step in ACTION["runs"]["steps"]:
        if "run" not in step or step["id"] == "install":
            continue
        if step["id"] == "synth" and not inputs.get("synth-command"):
            continue  # if: inputs.synth-command != ''
        output = tmp / f"{step['id']}.out"
        output.write_text("")
        env = shell_env(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary),
                        DPGUARD=str(BIN / "dpguard"),
                        **{k: expression(v, inputs, outputs) for k, v in step.get("env", {}).items()})
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=300)
        codes[step["id"]] = done.returncode
        outputs[step["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        outputs[step["id"]]["stdout"] = done.stdout + done.stderr
        if done.returncode:
            break  # later steps do not run
    outputs["summary"] = summary.read_text() if summary.exists() else ""
    return codes, outputs


def test_the_action_is_a_composite_that_installs_its_own_checkout_and_uploads_sarif():
    assert ACTION["runs"]["using"] == "composite"
    order = [s.get("id") or s.get("uses", "").split("@")[0] for s in ACTION["runs"]["steps"]]
    assert order == ["synth", "actions/setup-python", "install", "scan", "upload", "verdict"]
    assert '"$GITHUB_ACTION_PATH"' in STEPS["install"]["run"]  # dpguard from the action's own checkout
    # ... which is an installable project with the dpguard command
    assert 'dpguard = "dpguard.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert STEPS["upload"]["uses"].startswith("github/codeql-action/upload-sarif@")
    assert STEPS["upload"]["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    assert "always()" in STEPS["upload"]["if"]  # uploaded when violations fail the scan too
    assert {"paths", "synth-command", "fail-on", "baseline", "config"} <= set(ACTION["inputs"])


@pytest.fixture(scope="module")
def cdk_repo(tmp_path_factory) -> Path:
    """A repository with a Python CDK app, synthesized by the action's synth step with the
    project's CDK CLI."""
    repo = git_repo(tmp_path_factory.mktemp("cdk") / "repo")
    (repo / "app.py").write_text(APP)
    (repo / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py"}))
    return repo


@pytest.fixture(scope="module")
def synthesized(cdk_repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("action")
    codes, outputs = run_action(cdk_repo, tmp, **{"synth-command": f"{ROOT / 'node_modules/.bin/cdk'} synth -q"})
    return codes, outputs


def test_the_action_synthesizes_scans_and_fails_on_violations(cdk_repo, synthesized):
    codes, outputs = synthesized
    assert codes["synth"] == 0, outputs["synth"]["stdout"]
    assert outputs["scan"]["exit-code"] == "1" and codes["verdict"] == 1
    assert "::error title=dpguard::policy violations found" in outputs["verdict"]["stdout"]
    assert "DP-SqsEncrypted" in outputs["scan"]["stdout"]  # the table in the log
    assert outputs["summary"].startswith("## dpguard: ❌")  # the job summary


def test_sarif_of_the_action_points_at_the_line_that_created_the_construct(cdk_repo, synthesized):
    doc = json.loads((cdk_repo / "dpguard.sarif").read_text())
    jsonschema.validate(doc, SCHEMA)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == cdk_repo.resolve().as_uri() + "/"
    queue = next(r for r in run["results"] if r["ruleId"] == "DP-SqsEncrypted")
    where = queue["locations"][0]["physicalLocation"]
    assert where == {"artifactLocation": {"uri": "app.py", "uriBaseId": "SRCROOT"},
                     "region": {"startLine": QUEUE_LINE}}
    # and the template, at the queue's logical id, as a related location
    template = queue["relatedLocations"][0]["physicalLocation"]
    assert template["artifactLocation"] == {"uri": "cdk.out/Orders.template.json", "uriBaseId": "SRCROOT"}
    lines = (cdk_repo / "cdk.out" / "Orders.template.json").read_text().splitlines()
    assert lines[template["region"]["startLine"] - 1].strip().startswith(f'"{queue["locations"][0]["logicalLocations"][0]["name"]}"')


def test_without_host_stack_traces_sarif_points_at_the_template(tmp_path):
    # tests/data/cdk/insecure.out was synthesized by a plain `cdk synth` of a Python app: its
    # creation stack traces hold no frame of the app
    repo = git_repo(tmp_path / "repo")
    shutil.copytree(ROOT / "tests/data/cdk/insecure.out", repo / "cdk.out")
    sarif = repo / "dpguard.sarif"
    subprocess.run([str(BIN / "dpguard"), "scan", "cdk.out", "--format", "sarif", "-o", str(sarif)], cwd=repo,
                   env=shell_env(), capture_output=True, timeout=120)
    queue = next(r for r in json.loads(sarif.read_text())["runs"][0]["results"] if r["ruleId"] == "DP-SqsEncrypted")
    location = queue["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "cdk.out/Bad.template.json", "uriBaseId": "SRCROOT"}
    assert "relatedLocations" not in queue
    lines = (repo / "cdk.out/Bad.template.json").read_text().splitlines()
    assert lines[location["region"]["startLine"] - 1].strip().startswith('"Q')


def test_the_action_with_a_baseline_passes_on_known_findings(cdk_repo, synthesized, tmp_path):
    baseline = cdk_repo / ".dpguard-baseline.json"
    subprocess.run([str(BIN / "dpguard"), "scan", "cdk.out", "--baseline", baseline.name, "--update-baseline",
                    "-o", os.devnull], cwd=cdk_repo, env=shell_env(), check=True, timeout=120)
    codes, outputs = run_action(cdk_repo, tmp_path, baseline=baseline.name, **{"sarif-file": "with-baseline.sarif"})
    assert outputs["scan"]["exit-code"] == "0" and codes["verdict"] == 0
    results = json.loads((cdk_repo / "with-baseline.sarif").read_text())["runs"][0]["results"]
    assert {r["baselineState"] for r in results if r["properties"]["status"] == "violation"} == {"unchanged"}


def test_the_action_on_bad_input_exits_2(tmp_path):
    repo = git_repo(tmp_path / "repo")
    (repo / "broken.yaml").write_text("Resources: [\n")
    codes, outputs = run_action(repo, tmp_path, paths="broken.yaml")
    assert outputs["scan"]["exit-code"] == "2" and codes["verdict"] == 2


def test_the_action_on_templates_with_fail_on_warning(tmp_path):
    repo = git_repo(tmp_path / "repo")
    shutil.copy(ROOT / "examples/compliant/audited-data-store.yaml", repo)
    codes, outputs = run_action(repo, tmp_path, paths="audited-data-store.yaml")
    assert outputs["scan"]["exit-code"] == "0" and codes["verdict"] == 0
    jsonschema.validate(json.loads((repo / "dpguard.sarif").read_text()), SCHEMA)


# ---------------------------------------------------------------- pre-commit

HOOK = next(h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "dpguard-scan")


def run_hook(repo: Path) -> subprocess.CompletedProcess:
    """The hook as pre-commit runs it: the staged files that match `files` and not `exclude`,
    appended to entry and args."""
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.split()
    chosen = [f for f in staged if re.search(HOOK["files"], f) and not re.search(HOOK["exclude"], f)]
    argv = shlex.split(HOOK["entry"]) + HOOK.get("args", []) + chosen
    return subprocess.run(argv, cwd=repo, env=shell_env(), capture_output=True, text=True, timeout=120)


def stage(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "add", *files], cwd=repo, check=True)


def test_the_hook_definition():
    assert HOOK["language"] == "python" and HOOK["pass_filenames"] is True
    assert HOOK["entry"].split()[:2] == ["dpguard", "scan"]


def test_the_hook_judges_the_staged_templates_and_passes_over_other_files(tmp_path):
    repo = git_repo(tmp_path / "repo")
    stage(repo, {
        "templates/network.yaml": (ROOT / "examples/noncompliant/open-network.json").read_text(),
        "package.json": '{"name": "app", "version": "1.0.0"}',
        "cdk.json": '{"app": "python app.py", "context": {}}',
        "tsconfig.json": '{\n  // comments, as TypeScript allows\n  "compilerOptions": {}\n}',
        ".github/workflows/ci.yml": "on: [push]\njobs: {}\n",
        "cdk.out/Stale.template.json": '{"Resources": "not even a mapping"}',
    })
    done = run_hook(repo)
    assert done.returncode == 1, done.stderr
    assert "DP-SgOpenIngress" in done.stdout and "1 template(s)" in done.stdout


def test_a_commit_without_templates_passes_and_a_broken_template_fails(tmp_path):
    repo = git_repo(tmp_path / "repo")
    stage(repo, {"package.json": "{}", "tsconfig.json": "{ // jsonc\n}"})
    assert run_hook(repo).returncode == 0
    stage(repo, {"stack.template.json": '{"Resources": {'})
    done = run_hook(repo)
    assert done.returncode == 2 and "stack.template.json" in done.stderr


# ---------------------------------------------------------------- GitLab CI

def gitlab_job() -> dict:
    text = (ROOT / "docs" / "ci.md").read_text()
    gitlab = text[text.index("## GitLab CI"):]
    block = re.search(r"```yaml\n(.*?)```", gitlab, re.S)[1]
    return yaml.safe_load(block)["dpguard"]


def run_gitlab_job(workdir: Path, **variables) -> subprocess.CompletedProcess:
    """The job's script as GitLab's shell runs it: one shell, failing on the first failing line."""
    job = gitlab_job()
    installs = [line for line in job["script"] if line.startswith("pip install")]
    assert len(installs) == 1 and '"$DPGUARD_SOURCE"' in installs[0]
    script = "\n".join(line for line in job["script"] if line not in installs)
    env = shell_env(**{k: str(v) for k, v in {**job["variables"], **variables}.items()})
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_gitlab_job_reports_junit_keeps_sarif_and_fails_on_violations(tmp_path):
    job = gitlab_job()
    shutil.copytree(ROOT / "tests/data/cdk/insecure.out", tmp_path / "cdk.out")
    done = run_gitlab_job(tmp_path)
    assert done.returncode == 1, done.stderr
    junit = ET.parse(tmp_path / job["artifacts"]["reports"]["junit"]).getroot()
    assert int(junit.get("failures")) > 0
    assert set(job["artifacts"]["paths"]) == {"dpguard-junit.xml", "dpguard.sarif"}
    assert all((tmp_path / p).is_file() for p in job["artifacts"]["paths"])
    jsonschema.validate(json.loads((tmp_path / "dpguard.sarif").read_text()), SCHEMA)
    assert job["artifacts"]["when"] == "always"


def test_the_gitlab_job_with_a_baseline_passes(tmp_path):
    shutil.copytree(ROOT / "tests/data/cdk/insecure.out", tmp_path / "cdk.out")
    subprocess.run([str(BIN / "dpguard"), "scan", "cdk.out", "--baseline", "b.json", "--update-baseline",
                    "-o", os.devnull], cwd=tmp_path, env=shell_env(), check=True)
    done = run_gitlab_job(tmp_path, DPGUARD_OPTIONS="--fail-on error --baseline b.json")
    assert done.returncode == 0, done.stderr


def test_the_docs_example_workflow_uses_the_action_with_sarif_permissions():
    text = (ROOT / "docs" / "ci.md").read_text()
    workflow = yaml.safe_load(re.search(r"```yaml\n(name: dpguard\n.*?)```", text, re.S)[1])
    assert workflow["permissions"]["security-events"] == "write"
    step = next(s for s in workflow["jobs"]["policy"]["steps"] if "dpguard@" in s.get("uses", ""))
    assert set(step["with"]) <= set(ACTION["inputs"])
