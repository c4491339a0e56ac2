from sentimon.cli.main import app

if __name__ == "__main__":
    app(prog_name="sentimon")
