"""kubecast: Kubernetes-native live streaming.

Data flows one way through the subpackages: ``ingest`` -> ``encoder`` -> ``storage``
<- ``packager`` <- ``endpoint``, with shared ``media`` primitives. ``api`` holds the
resource models that both ``operator`` (cluster) and ``local`` (one machine) read.
"""

__version__ = "0.1.0"
