"""The architecture holds: the layers of ``pyproject.toml`` (checked by ``lint-imports`` in
``make lint``) have no module cycle inside them, and deployment (load a bundle, build a
planner backend, plan, run the control loop's modules) imports nothing from training,
scoring or the exporter."""

from __future__ import annotations

import subprocess
import sys

import grimp

PACKAGES = ("boom_control", "export", "sim_bridge")

_DEPLOY = """
import sys
import torch
from boom_control.bundle import load_bundle
from boom_control.bundles import shipped_bundle
from boom_control.control.factory import build_backend
import boom_control.control.loop, boom_control.cli.control, sim_bridge.client

bundle = load_bundle(shipped_bundle("h1-stand"))
for name in ("torch", "onnx", "torchscript"):
    backend = build_backend(bundle, name, "cpu", samples=16, iterations=1)
    backend.warmup(bundle.obs_dim, rounds=1)
    z = backend.encode(torch.zeros(1, bundle.obs_dim))
    assert torch.isfinite(backend.policy_action(z)).all()
training = ("boom_control.train", "boom_control.evaluation", "export")
print(sorted(m for m in sys.modules if m.split(".")[0] == "export" or m.startswith(training)))
"""


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES)
    modules = sorted(graph.modules)
    index = {m: i for i, m in enumerate(modules)}
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    # Tarjan's strongly connected components, iteratively
    order, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]
    for root in modules:
        if root in order:
            continue
        work = [(root, iter(edges[root]))]
        order[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    continue
                if child not in order:
                    order[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], order[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert cycles == [], f"module import cycles: {cycles}"


def test_deployment_imports_nothing_from_training_or_the_exporter():
    out = subprocess.run(
        [sys.executable, "-c", _DEPLOY], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
