"""Screens: profile picker, dashboard, dialogs."""
