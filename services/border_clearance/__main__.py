import sys

from corridor.entrypoint import main
from services.border_clearance import app

if __name__ == "__main__":
    sys.exit(
        main(
            "services.border_clearance",
            app.__doc__ or "",
            app.BorderSettings,
            lambda: app.create_service().run(),
        )
    )
