"""Configuration of the certificate service."""

from certificate_service.core.config import (
    DeploymentError,
    DeploymentInfo,
    Settings,
    get_settings,
    read_deployment,
)

__all__ = ["DeploymentError", "DeploymentInfo", "Settings", "get_settings", "read_deployment"]
