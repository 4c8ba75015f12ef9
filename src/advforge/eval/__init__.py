"""Evaluation: run attacks under a target protocol, count success, write reports.

``evaluate(attack, model, x, y, targets=None | int | tensor | "all")`` returns an
:class:`AttackResult`; ``write_report`` turns a list of them into ``report.json``,
``report.md`` and a self-contained ``report.html``. ``robust_cascade`` measures robust
accuracy under AutoAttack's standard cascade, as the per-example worst case; ``robust_curve``
gives robust accuracy against eps (non-increasing) and ``masking_audit`` the gradient-masking
checks of Carlini et al. (2019).
"""

from advforge.eval.audit import AuditCheck, AuditConfig, masking_audit
from advforge.eval.curve import CurvePoint, robust_curve
from advforge.eval.evaluate import evaluate, expand_pairs, predict, sample_grid
from advforge.eval.metrics import confusion_matrix, lp_distances, summarize
from advforge.eval.report import build_meta, markdown_table, render_markdown, write_report
from advforge.eval.result import AttackResult
from advforge.eval.robustness import RobustnessResult, robust_cascade, standard_attacks

__all__ = [
    "AttackResult",
    "AuditCheck",
    "AuditConfig",
    "CurvePoint",
    "RobustnessResult",
    "build_meta",
    "confusion_matrix",
    "evaluate",
    "expand_pairs",
    "lp_distances",
    "markdown_table",
    "masking_audit",
    "predict",
    "render_markdown",
    "robust_cascade",
    "robust_curve",
    "sample_grid",
    "standard_attacks",
    "summarize",
    "write_report",
]
