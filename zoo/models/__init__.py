"""Architecture families, one module each; importing a module registers its architectures and checkpoints."""

from __future__ import annotations

# One family a line (keep sorted).
from . import biggan  # noqa: F401
from . import dcgan  # noqa: F401
from . import encoders  # noqa: F401
from . import fastgan  # noqa: F401
from . import mlpgan  # noqa: F401
from . import mobilestylegan  # noqa: F401
from . import progan  # noqa: F401
from . import r3gan  # noqa: F401
from . import studiogan  # noqa: F401
from . import stylegan1  # noqa: F401
from . import stylegan2  # noqa: F401
from . import stylegan2_tf  # noqa: F401
from . import stylegan3  # noqa: F401
from . import stylegan_xl  # noqa: F401
from . import styleswin  # noqa: F401
