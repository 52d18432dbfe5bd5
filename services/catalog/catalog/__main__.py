from catalog.app import MIGRATIONS, create_app
from catalog.settings import CatalogSettings
from te_shared.cli import service_main


def main() -> None:
    service_main(CatalogSettings, create_app, MIGRATIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
