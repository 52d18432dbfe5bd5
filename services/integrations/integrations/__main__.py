from integrations.app import MIGRATIONS, create_app
from integrations.settings import IntegrationsSettings
from te_shared.cli import service_main


def main() -> None:
    service_main(IntegrationsSettings, create_app, MIGRATIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
