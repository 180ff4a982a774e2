"""Settings for the test suite: the same settings, pointed at the test cluster's generated configs.

The test cluster (cluster.profiles.TEST) lives under var/test with its own ports, so it never touches a
running demo cluster. This module only sets the environment; the settings themselves are not forked.
"""

import os

from cluster.profiles import TEST

TEST.prepare_configs()
TEST.prepare_secrets()
os.environ["LETSEMA_DISTRICT_CONFIG_DIR"] = str(TEST.config_dir)
os.environ.setdefault("LETSEMA_DISTRICT", "maseru")
os.environ["LETSEMA_SECRETS_DIR"] = str(TEST.secrets_dir(os.environ["LETSEMA_DISTRICT"]))
os.environ["LETSEMA_STATIC_ROOT"] = str(TEST.var_dir / "static")
os.environ["LETSEMA_VAR_DIR"] = str(TEST.var_dir)

from config.settings import *  # noqa: E402,F401,F403

# Two test runs on one machine (e.g. two engineers' sessions) must not share a test database.
if os.environ.get("LETSEMA_TEST_DB_SUFFIX"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.environ['LETSEMA_TEST_DB_SUFFIX']}"}  # noqa: F405
