from sentimon.cli.main import app

app(prog_name="sentimon")
