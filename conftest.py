pytest_plugins = ["te_shared.testing"]
