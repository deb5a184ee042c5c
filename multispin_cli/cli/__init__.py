"""The `multispin` command line: thin Typer commands over the library."""

from multispin_cli.cli.app import app, main
from multispin_cli.cli import plan as _plan  # noqa: F401  (registers `multispin plan`)
from multispin_cli.cli import hardware as _hardware  # noqa: F401
from multispin_cli.cli import export as _export  # noqa: F401  (registers `multispin export`)
from multispin_cli.cli import schedule as _schedule  # noqa: F401  (registers `multispin schedule`)
from multispin_cli.cli import simulate as _simulate  # noqa: F401  (registers `multispin simulate`)
from multispin_cli.cli import calibrate as _calibrate  # noqa: F401  (registers `multispin calibrate`)
from multispin_cli.cli import catalog as _catalog  # noqa: F401  (registers `profiles`, `init`, `schema`)
from multispin_cli.cli import sweep as _sweep  # noqa: F401  (registers `multispin sweep`)
from multispin_cli.cli import capacity as _capacity  # noqa: F401  (registers `multispin capacity`)
from multispin_cli.cli import validate as _validate  # noqa: F401  (registers `multispin validate`)

__all__ = ["app", "main"]
