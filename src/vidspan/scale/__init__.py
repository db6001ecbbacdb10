"""vidspan's batch jobs on a Ray cluster (``pip install 'vidspan[ray]'``): Ray Data pipelines that decode
on CPU tasks and answer on model actors, with the same run directories and index rows as one process."""

from vidspan.scale.ray import ItemFailed, RayError, RayOptions, ray_session, run_items
from vidspan.scale.remote import RemoteModel, remote_model

__all__ = ["ItemFailed", "RayError", "RayOptions", "RemoteModel", "ray_session", "remote_model", "run_items"]
