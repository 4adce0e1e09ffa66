"""JUnit XML for CI dashboards: a suite per template, a test case per rule and template (failed
when the rule found a problem there), acknowledged findings as skipped cases."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from ..engine.evaluate import Report
from .text import printable


def xml_text(value) -> str:
    """Template text as XML 1.0 can hold it: most C0 controls and lone surrogates are not XML
    characters (a parser rejects the whole file), so they are shown as escapes."""
    return printable(value, lines=True)


def render(report: Report, errors: list) -> str:
    by_key = defaultdict(list)
    for f in report.findings:
        by_key[(f.template, f.rule_id)].append(f)
    rules = {rule.rule_id: rule for rule in report.rules}
    root = ET.Element("testsuites", name="dpguard")
    total = failures = 0
    for tpl in report.templates:
        suite = ET.SubElement(root, "testsuite", name=xml_text(tpl.path))
        cases = fails = skipped = 0
        for (path, rule_id), count in sorted(report.counts.items()):
            if path != tpl.path or not count.evaluated:
                continue
            cases += 1
            found = by_key.get((path, rule_id), [])
            case = ET.SubElement(suite, "testcase", classname=xml_text(tpl.stack),
                                 name=xml_text(f"{rule_id} {rules[rule_id].title}"))
            failing = [f for f in found if f.fails and not f.baselined]  # --baseline: only new ones fail
            if failing:
                fails += 1
                failure = ET.SubElement(case, "failure", type=xml_text(rule_id),
                                        message=f"{len(failing)} problem(s), clause {rules[rule_id].clause}")
                failure.text = xml_text("\n".join(
                    f"[{f.status}] {f.locator or f.logical_id or '-'} {f.property_path}: {f.message}" for f in failing
                ) + "".join(f"\nFix: {fix}" for fix in dict.fromkeys(f.remediation for f in failing)))
            elif found:
                skipped += 1
                ET.SubElement(case, "skipped", message=xml_text("; ".join(
                    f"{f.logical_id}: in the baseline: {f.message}" if f.baselined
                    else f"{f.logical_id}: acknowledged: {f.acknowledgment['reason']}" for f in found)))
        suite.set("tests", str(cases))
        suite.set("failures", str(fails))
        suite.set("skipped", str(skipped))
        suite.set("errors", "0")
        total += cases
        failures += fails
    if report.not_judged:  # a skipped case per type that no rule judged: visible, not failing
        suite = ET.SubElement(root, "testsuite", name="not judged", tests=str(len(report.not_judged)),
                              failures="0", errors="0", skipped=str(len(report.not_judged)))
        for c in report.not_judged:
            case = ET.SubElement(suite, "testcase", classname="coverage", name=xml_text(c.resource_type))
            ET.SubElement(case, "skipped", message=xml_text(f"{c.resources} resource(s) not judged: {c.reason}"))
        total += len(report.not_judged)
    if errors:
        suite = ET.SubElement(root, "testsuite", name="inputs", tests=str(len(errors)),
                              failures="0", errors=str(len(errors)))
        for e in errors:
            case = ET.SubElement(suite, "testcase", classname="inputs", name=xml_text(e.path))
            ET.SubElement(case, "error", message=xml_text(e.message))
    root.set("tests", str(total + len(errors)))
    root.set("failures", str(failures))
    root.set("errors", str(len(errors)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
