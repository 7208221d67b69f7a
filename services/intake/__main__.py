import sys

from corridor.entrypoint import main
from services.intake import app

if __name__ == "__main__":
    sys.exit(
        main(
            "services.intake",
            app.__doc__ or "",
            app.IntakeSettings,
            lambda: app.create_service().run(),
        )
    )
