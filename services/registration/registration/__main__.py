from registration.app import MIGRATIONS, create_app
from registration.settings import RegistrationSettings
from te_shared.cli import service_main


def main() -> None:
    service_main(RegistrationSettings, create_app, MIGRATIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
