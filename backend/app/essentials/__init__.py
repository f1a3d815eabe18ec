"""The essentials: the framework's own systems, whose tables live in the auth database.

As Laravel's database drivers and Rails 8's Solid Cache and Solid Queue do, the
essentials need nothing beyond the databases to run, and each has a Redis or broker
backend behind the same interface for services that outgrow the database. They
import only `app.core`; what they need from above (who the caller is, a user's email)
is handed to them when the application is put together.
"""
