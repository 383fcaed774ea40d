"""Backup Job Tracker as an Azure Functions app: this file only registers the blueprints of ``jobs``."""

import azure.functions as func

from jobs.functions import blueprint
from jobs.http_functions import blueprint as http_blueprint

app = func.FunctionApp()
app.register_functions(blueprint)  # queue and timer triggers
app.register_functions(http_blueprint)  # the HTTP API (routes and auth levels in jobs/http_functions.py)
