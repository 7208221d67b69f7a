from services.operations.app import run

if __name__ == "__main__":
    run()
