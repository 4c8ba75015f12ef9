"""Small-budget hyperparameters per attack so the registry-wide tests stay fast."""

from __future__ import annotations

FAST: dict[str, dict] = {
    "apgd_ce": {"steps": 5},
    "apgd_t": {"steps": 5, "n_target_classes": 2},
    "apgd_ce_l2": {"eps": 1.5, "steps": 5},
    "apgd_t_l2": {"eps": 1.5, "steps": 5, "n_target_classes": 2},
    "pgd": {"steps": 3, "step_size": 0.1},
    "pgd_l2": {"eps": 1.5, "steps": 3, "step_size": 0.5},
    "cw_l2": {"steps": 20, "binary_search_steps": 2, "lr": 0.05, "initial_const": 1.0},
    "cw_linf": {"steps": 5, "max_iterations": 15, "lr": 0.05},
    "lbfgs": {"search_steps": 2, "max_iter": 5},
    "square": {"n_queries": 50},
    # fi_pso: an L0 budget of 12 of the 144 components (explicit indices, so no FI is needed);
    # b = 0 because the toy model is so confident (logit gaps ~30) that f0 moves by ~1e-13,
    # which any norm weight would drown, leaving x unchanged.
    "fi_pso": {"pixels": 12, "indices": list(range(6, 144, 12)), "particles": 16, "iters": 8,
               "b": 0.0},
    "square_l2": {"eps": 1.5, "n_queries": 50},
    "fab_t": {"steps": 5, "n_target_classes": 2},
    "fab_t_l2": {"eps": 1.5, "steps": 5, "n_target_classes": 2},
}


def fast_hyper(name: str) -> dict:
    """Hyperparameters for a quick run of ``name`` (defaults for attacks not listed)."""
    return dict(FAST.get(name, {}))
