"""Render deploy/kubecast.yaml (for `kubectl apply -f`) from the Helm chart, with the real Helm
engine (helm-python-sdk).  A test fails when the file and the chart drift apart.

    .venv/bin/python scripts/render_manifests.py > deploy/kubecast.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "kubecast"
NAMESPACE = "kubecast-system"


def render() -> str:
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    for crd_file in sorted((CHART / "crds").glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(crd_file.read_text()) if d]
    rendered = chart.render(None, name="kubecast", namespace=NAMESPACE, is_install=True)
    for path in sorted(rendered):
        documents += [d for d in yaml.safe_load_all(rendered[path]) if d]
    header = "# Generated from helm/kubecast by scripts/render_manifests.py (default values): do not edit by hand.\n"
    return header + yaml.safe_dump_all(documents, sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())
