"""pocctl: build, exercise and tear down the serverless order pipeline of the AWS lab."""

__version__ = "0.1.0"
