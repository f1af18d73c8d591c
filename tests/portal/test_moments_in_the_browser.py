"""The pages' scripts write durations as the server does: the lease countdown and the upload's time
left use ``window.portalDuration`` (static/js/portal.js), which must agree with ``duration_text``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from django.conf import settings

from portal.moments import duration_text

# portal.js runs in a page: give it the little of a page it touches at load.
NODE = """
global.window = {};
global.document = {cookie: "", addEventListener() {}};
require(process.argv[1]);
const lengths = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(lengths.map((seconds) => window.portalDuration(seconds))));
"""

LENGTHS = [0, 0.5, 1, 59, 60, 61, 119, 3599, 3600, 3661, 7199, 86399, 86400, 90061, 604799, 604800, 10 * 86400 + 5]


def test_the_scripts_write_every_duration_as_the_server_does():
    node = shutil.which("node")
    assert node, "node is needed (it also runs the browser tests' axe-core install)"
    script = Path(settings.BASE_DIR) / "static" / "js" / "portal.js"
    done = subprocess.run(
        [node, "-e", NODE, str(script)], input=json.dumps(LENGTHS), capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [duration_text(seconds) for seconds in LENGTHS]
