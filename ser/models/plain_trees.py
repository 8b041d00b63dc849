"""Tree structures saved as plain, checked arrays instead of scikit-learn's native types.

scikit-learn's compiled tree types - ``sklearn.tree._tree.Tree`` (decision trees and
random forests), ``TreePredictor`` (HistGradientBoosting) and ``KDTree`` (k-NN) - walk
their node arrays without bounds checks, so a crafted model file whose child index,
feature index or value table is out of range crashes the process (skops leaves them
untrusted for this reason). A model folder therefore never holds them:

* :func:`to_plain` (at save time) replaces each (and the ``Bunch`` of a voting
  ensemble's named members, also outside skops' trusted set) by a ``dict`` of plain numpy arrays
  (children, features, thresholds, values, ... - types skops trusts);
* :func:`from_plain` (at load time) checks every node of those arrays - each child
  index inside the tree and *after* its parent (so no cycle is possible), each feature
  index below the number of inputs the estimators around it accept, the value table's
  shape, no categorical splits - and only then rebuilds the native object. A k-NN's
  KD tree is not stored at all: it is rebuilt from the training points (what
  scikit-learn's own ``fit`` does).

Anything that fails a check raises :class:`TreeCheckError` with one line saying which
estimator and node; :func:`ser.models.store.load_model` turns it into a refusal.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

#: Key marking a dict that stands for a native tree structure (its value names the kind).
MARK = "__ser_plain__"
_TREE_FIELDS = ("left_child", "right_child", "feature", "threshold", "impurity",
                "n_node_samples", "weighted_n_node_samples", "missing_go_to_left")
_HGB_FIELDS = ("value", "count", "feature_idx", "num_threshold", "missing_go_to_left",
               "left", "right", "gain", "depth", "is_leaf", "bin_threshold",
               "is_categorical", "bitset_idx")


class TreeCheckError(ValueError):
    """A stored tree structure that is inconsistent (would index outside its arrays)."""


# --------------------------------------------------------------------------- saving


def to_plain(model: Any) -> Any:
    """A deep copy of ``model`` with every native tree structure replaced by plain arrays."""
    model = copy.deepcopy(model)
    _walk(model, _plain_of, set())
    return model


def _plain_of(value: Any, width: int | None = None, owner: Any = None) -> Any:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import KDTree
    from sklearn.tree._tree import Tree
    from sklearn.utils import Bunch

    if isinstance(value, Tree):
        state = value.__getstate__()
        nodes = state["nodes"]
        return {MARK: "tree", "n_features": int(value.n_features),
                "n_classes": np.asarray(value.n_classes, dtype=np.int64),
                "n_outputs": int(value.n_outputs), "values": np.asarray(state["values"]),
                **{f: np.ascontiguousarray(nodes[f]) for f in _TREE_FIELDS}}
    if isinstance(value, TreePredictor):
        return {MARK: "hist_tree",
                "binned_left_cat_bitsets": np.asarray(value.binned_left_cat_bitsets),
                "raw_left_cat_bitsets": np.asarray(value.raw_left_cat_bitsets),
                **{f: np.ascontiguousarray(value.nodes[f]) for f in _HGB_FIELDS}}
    if isinstance(value, KDTree):
        return {MARK: "kd_tree"}
    if isinstance(value, Bunch):  # VotingClassifier.named_estimators_
        return {MARK: "bunch", "items": dict(value)}
    return None


def _walk(obj: Any, replace, seen: set[int], width: int | None = None,
          owner: Any = None) -> None:
    """Replace (in place) values inside estimators, lists and dicts for which
    ``replace(value, width, owner)`` returns something; ``width`` is the smallest
    ``n_features_in_`` of the estimators around the value, ``owner`` the nearest."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, list | dict):
        items = obj
        pairs = list(enumerate(obj)) if isinstance(obj, list) else list(obj.items())
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        own = getattr(obj, "n_features_in_", None)
        if isinstance(own, int | np.integer):
            width = int(own) if width is None else min(width, int(own))
        owner, items = obj, vars(obj)
        pairs = list(items.items())
    elif isinstance(obj, tuple):
        for value in obj:
            _walk(value, replace, seen, width, owner)
        return
    else:
        return
    for key, value in pairs:
        new = replace(value, width, owner)
        if new is not None:
            items[key] = new
        _walk(items[key], replace, seen, width, owner)


# --------------------------------------------------------------------------- loading


def from_plain(model: Any) -> Any:
    """Check every plain tree structure inside ``model`` and rebuild the native objects
    (in place; returns ``model``). Raises :class:`TreeCheckError` on any inconsistency."""
    _walk(model, _native_of, set())
    return model


def _native_of(value: Any, width: int | None, owner: Any) -> Any:
    if not (isinstance(value, dict) and MARK in value):
        return None
    kind = value[MARK]
    if kind == "bunch" and isinstance(value.get("items"), dict):
        from sklearn.utils import Bunch

        return Bunch(**{str(k): v for k, v in value["items"].items()})
    if width is None:
        raise TreeCheckError(f"a stored {kind} has no enclosing estimator with "
                             "n_features_in_")
    if kind == "tree":
        return _rebuild_tree(value, width)
    if kind == "hist_tree":
        return _rebuild_hist_tree(value, width, owner)
    if kind == "kd_tree":
        return _rebuild_kd_tree(owner, width)
    raise TreeCheckError(f"unknown stored structure {kind!r}")


def _array(value: dict, key: str, dtype, n: int | None = None) -> np.ndarray:
    arr = value.get(key)
    if not isinstance(arr, np.ndarray) or arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise TreeCheckError(f"tree field {key!r} is not a 1-D array of the node count")
    if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
        raise TreeCheckError(f"tree field {key!r} has dtype {arr.dtype}, expected {dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def check_children(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> None:
    """Every internal node's children inside the tree and after the node itself (no
    cycle can exist, each walk ends at a leaf); raises :class:`TreeCheckError`."""
    n = left.shape[0]
    if n < 1:
        raise TreeCheckError("tree has no nodes")
    idx = np.arange(n)
    inner = ~is_leaf
    for name, child in (("left", left), ("right", right)):
        bad = inner & ((child <= idx) | (child >= n))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TreeCheckError(f"node {i}'s {name} child {int(child[i])} is outside the "
                                 f"tree ({n} nodes) or not after the node")


def _check_features(feature: np.ndarray, is_leaf: np.ndarray, width: int) -> None:
    bad = ~is_leaf & ((feature < 0) | (feature >= width))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TreeCheckError(f"node {i} splits on feature {int(feature[i])} but the model "
                             f"takes {width} inputs")


def _depth(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> int:
    """Depth of the tree, one vectorised step per level (children come after parents,
    checked, so the walk ends)."""
    frontier, depth = np.array([0]), 0
    while True:
        inner = frontier[~is_leaf[frontier]]
        if inner.size == 0:
            return depth
        frontier = np.concatenate([left[inner], right[inner]])
        depth += 1


def _rebuild_tree(value: dict, width: int) -> Any:
    from sklearn.tree._tree import NODE_DTYPE, Tree

    left = _array(value, "left_child", np.int64)
    n = left.shape[0]
    right = _array(value, "right_child", np.int64, n)
    feature = _array(value, "feature", np.int64, n)
    leaf_left, leaf_right = left == -1, right == -1
    if (leaf_left != leaf_right).any():
        raise TreeCheckError(f"node {int(np.flatnonzero(leaf_left != leaf_right)[0])} has "
                             "one child")
    check_children(left, right, leaf_left)
    _check_features(feature, leaf_left, width)
    n_outputs = value.get("n_outputs")
    n_classes = value.get("n_classes")
    if not isinstance(n_outputs, int) or n_outputs != 1 or \
            not isinstance(n_classes, np.ndarray) or n_classes.shape != (1,) or \
            not 1 <= int(n_classes[0]) <= 10_000:
        raise TreeCheckError("tree is not a single-output classifier tree")
    values = value.get("values")
    if not isinstance(values, np.ndarray) or values.shape != (n, 1, int(n_classes[0])) or \
            values.dtype != np.float64:
        raise TreeCheckError(f"tree value table has shape "
                             f"{getattr(values, 'shape', None)}, expected "
                             f"({n}, 1, {int(n_classes[0])}) float64")
    nodes = np.zeros(n, dtype=NODE_DTYPE)
    nodes["left_child"], nodes["right_child"], nodes["feature"] = left, right, feature
    for name, dtype in (("threshold", np.float64), ("impurity", np.float64),
                        ("n_node_samples", np.int64), ("weighted_n_node_samples", np.float64),
                        ("missing_go_to_left", np.uint8)):
        nodes[name] = _array(value, name, dtype, n)
    tree = Tree(width, np.asarray(n_classes, dtype=np.intp), 1)
    tree.__setstate__({"max_depth": _depth(left, right, leaf_left), "node_count": n,
                       "nodes": nodes, "values": np.ascontiguousarray(values)})
    return tree


def _rebuild_hist_tree(value: dict, width: int, owner: Any) -> Any:
    from sklearn.ensemble._hist_gradient_boosting.common import (
        PREDICTOR_RECORD_DTYPE,
        X_BITSET_INNER_DTYPE,
    )
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    left = _array(value, "left", np.int64)
    n = left.shape[0]
    right = _array(value, "right", np.int64, n)
    is_leaf = _array(value, "is_leaf", np.uint8, n).astype(bool)
    check_children(left, right, is_leaf)
    _check_features(_array(value, "feature_idx", np.int64, n), is_leaf, width)
    if _array(value, "is_categorical", np.uint8, n).any():
        raise TreeCheckError("gradient-boosting tree has categorical splits (never trained "
                             "by this project)")
    categorical = getattr(getattr(owner, "_bin_mapper", None), "is_categorical_", None)
    if getattr(owner, "is_categorical_", None) is not None or \
            (categorical is not None and np.asarray(categorical).any()):
        raise TreeCheckError("gradient-boosting model has categorical features (never "
                             "trained by this project)")
    nodes = np.zeros(n, dtype=PREDICTOR_RECORD_DTYPE)
    for name in _HGB_FIELDS:
        nodes[name] = _array(value, name, PREDICTOR_RECORD_DTYPE[name], n)
    empty = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)
    return TreePredictor(nodes, empty, empty.copy())


def _rebuild_kd_tree(owner: Any, width: int) -> Any:
    from sklearn.neighbors import KDTree

    data = getattr(owner, "_fit_X", None)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != width or \
            data.shape[0] < 1:
        raise TreeCheckError("k-NN training points missing or not of the model's width")
    return KDTree(np.asarray(data, dtype=np.float64), leaf_size=int(owner.leaf_size),
                  metric=owner.effective_metric_, **(owner.effective_metric_params_ or {}))
