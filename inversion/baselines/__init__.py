"""Reference encoders the MambaStyle encoder is measured against (not used in serving)."""

from inversion.baselines.psp import GradualStyleEncoder, PSPConfig

__all__ = ["GradualStyleEncoder", "PSPConfig"]
