"""Backup Job Tracker as an Azure Functions app: this file only registers the blueprints of ``jobs``."""

import azure.functions as func

from jobs.functions import blueprint

app = func.FunctionApp()
app.register_functions(blueprint)
