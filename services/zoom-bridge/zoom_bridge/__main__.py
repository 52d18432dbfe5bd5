from te_shared.cli import service_main
from zoom_bridge.app import MIGRATIONS, create_app
from zoom_bridge.settings import ZoomBridgeSettings


def main() -> None:
    service_main(ZoomBridgeSettings, create_app, MIGRATIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
