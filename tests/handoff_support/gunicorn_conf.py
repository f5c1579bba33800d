"""gunicorn settings for the hand-off tests: close WebSockets when a worker stops."""


def worker_exit(server, worker):
    from app import worker_exit as close_websockets

    close_websockets(server, worker)
