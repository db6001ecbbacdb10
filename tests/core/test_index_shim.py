"""The old ``vidspan.index`` paths keep working for one release, with a DeprecationWarning."""

from __future__ import annotations

import subprocess
import sys


def test_old_index_paths_are_the_library_modules_with_a_warning():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    import vidspan.index\nexcept DeprecationWarning as w:\n    print('warned:', w)\n"
        "warnings.simplefilter('ignore')\n"
        "import vidspan.index.store, vidspan.index.sql_reads, vidspan.library.sqlite, vidspan.library.sql\n"
        "from vidspan.index.open import open_index\n"
        "from vidspan.library import open_library\n"
        "print(vidspan.index.store is vidspan.library.sqlite, vidspan.index.sql_reads is vidspan.library.sql,"
        " open_index is open_library)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("warned: vidspan.index is renamed vidspan.library")
    assert lines[1] == "True True True"
