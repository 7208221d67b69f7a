import sys

from corridor.entrypoint import main
from services.operations import app

if __name__ == "__main__":
    sys.exit(main("services.operations", app.__doc__ or "", app.OperationsSettings, app.run))
