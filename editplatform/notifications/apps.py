from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "editplatform.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Listen to the log rather than hook the job and approval services: every decision
        # and result is already an audit event, committed with the change it records.
        from audit.signals import event_appended
        from editplatform.notifications import listeners

        event_appended.connect(listeners.on_event_appended, dispatch_uid="notifications.on_event")
