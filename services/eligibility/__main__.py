import sys

from corridor.entrypoint import main
from services.eligibility import app

if __name__ == "__main__":
    sys.exit(
        main(
            "services.eligibility",
            app.__doc__ or "",
            app.EligibilitySettings,
            lambda: app.create_service().run(),
        )
    )
