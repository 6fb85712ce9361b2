"""The report of a model's tuning: its tasks grouped under the model, as the tune-model table
has them (weight, trials, best latency, share of the end-to-end estimate)."""

from __future__ import annotations

import math
import re

import pytest

import probsched as ps
from probsched.driver import report
from probsched.driver.report_models import ModelGroup, model_groups
from probsched.network.tuning import MODEL_NOTE
from probsched.search.database import Database

pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install "
                    "'probsched[onnx]'")


@pytest.fixture(scope="module")
def tuned_model(tmp_path_factory):
    """The three-task model of the network tests, one trial per task, into a database."""
    from test_network_tuning import tiny_model

    net = ps.load_onnx(tiny_model())
    db = tmp_path_factory.mktemp("model") / "runs.db"
    result = net.tune(trials=len(net.tasks), db=str(db), strategy="round-robin",
                      round_size=1, progress=False)
    return net, result, db


def test_the_database_notes_the_model_and_its_tasks(tuned_model):
    net, _, db = tuned_model
    with Database(db, readonly=True) as d:
        notes = [v for k, v in d.notes().items() if k.startswith(MODEL_NOTE)]
    assert len(notes) == 1
    assert notes[0]["model"] == net.name == "tiny"
    assert notes[0]["layout"] == net.layout == "nhwc"
    assert [(t["hash"], t["weight"]) for t in notes[0]["tasks"]] == \
        [(t.hash, t.weight) for t in net.tasks]


def test_the_groups_have_each_task_as_the_tune_model_table(tuned_model):
    net, result, db = tuned_model
    with Database(db, readonly=True) as d:
        found = report.sections(d)
        groups = model_groups(d.notes(), found)
    assert len(groups) == 1
    group = groups[0]
    assert group.name == "tiny" and len(group.tasks) == len(net.tasks)
    for line, row in zip(group.tasks, result.rows, strict=True):
        assert (line.index, line.name, line.weight, line.trials) == \
            (row.index, row.name, row.weight, row.trials)
        assert math.isfinite(line.best_s) == math.isfinite(row.best_s)
    if math.isfinite(group.end_to_end_s):
        assert sum(t.share for t in group.tasks) == pytest.approx(1.0)


def test_the_page_groups_the_tasks_under_the_model(tuned_model, tmp_path):
    net, _, db = tuned_model
    out = tmp_path / "report.html"
    report.write_report(db, out)
    page = out.read_text()
    start = page.index('<section class="model"')
    assert "Model tiny (nhwc) on" in page
    table = page[start:page.index("</table>", start)]
    for t in net.tasks:
        assert f">{t.name}</a>" in table or f"<td>{t.name}</td>" in table
    # every task's workload part sits inside the model's part, after its table
    anchors = re.findall(r'<section class="workload" id="([^"]+)"', page)
    assert len(anchors) == len(net.tasks)
    assert all(page.index(f'id="{a}"') > start for a in anchors)
    assert "End-to-end estimate" in page


def test_one_model_in_two_layouts_has_two_anchors():
    groups = [ModelGroup("resnet18", "cpu", "gradient", (), layout) for layout in
              ("nhwc", "nchw", "")]
    assert len({g.anchor for g in groups}) == 3
