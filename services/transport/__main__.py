import sys

from corridor.entrypoint import main
from services.transport import app

if __name__ == "__main__":
    sys.exit(
        main(
            "services.transport",
            app.__doc__ or "",
            app.TransportSettings,
            lambda: app.create_service().run(),
        )
    )
