"""The app's stacks (one: :class:`cdk.stacks.webordinary.WebOrdinaryStack`)."""
