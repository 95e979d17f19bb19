"""The Setup Assistant panes an enrollment profile can hide: Apple's SkipKeys, with names people recognise.

Apple's ``skip_setup_items`` (reference section 5) lists the panes a device does *not* show. Admins think in
panes shown and hidden, so every key has a readable name, the platforms it applies to and, where Apple says
so, a note (deprecated, not always skippable). Legacy keys Apple no longer lists (``Registration``,
``AgeAssurance``) are left out on purpose: the reference advises not to rely on them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from pippin.errors import InvalidInput


@dataclass(frozen=True)
class SetupPane:
    """One skippable Setup Assistant pane."""

    key: str  # Apple's SkipKey, exactly as sent in skip_setup_items
    name: str
    platforms: str
    note: str | None = None


PANES: tuple[SetupPane, ...] = (
    SetupPane("Accessibility", "Accessibility", "macOS 11+ (additional users)"),
    SetupPane("AccessibilityAppearance", "Accessibility appearance", "iOS 17+"),
    SetupPane("ActionButton", "Action Button", "iOS 17+"),
    SetupPane("AdditionalPrivacySettings", "Additional privacy settings", "macOS 26+"),
    SetupPane("Android", "Move from Android", "iOS 9+"),
    SetupPane("Appearance", "Choose your look", "iOS 13+, macOS 10.14+"),
    SetupPane("AppleID", "Apple Account and iCloud sign-in", "iOS, iPadOS, macOS, tvOS"),
    SetupPane("AppStore", "App Store", "iOS 14.3+, macOS 11.1+"),
    SetupPane("Biometric", "Touch ID / Face ID", "iOS 8.1+, macOS 10.12.4+"),
    SetupPane("CameraButton", "Camera Control", "iOS 18+"),
    SetupPane("DeviceToDeviceMigration", "Transfer from another device", "iOS 12.4+"),
    SetupPane("Diagnostics", "App Analytics", "iOS, iPadOS, macOS, tvOS"),
    SetupPane("DisplayTone", "True Tone", "iOS, macOS", "deprecated in iOS 15 and macOS 12"),
    SetupPane("EnableLockdownMode", "Lockdown Mode", "iOS 17.1+, macOS 14+"),
    SetupPane("FileVault", "FileVault", "macOS 10.10+"),
    SetupPane("HomeButtonSensitivity", "Home button", "iPhone 7, 8 and SE", "deprecated in iOS 15"),
    SetupPane("iCloudDiagnostics", "iCloud Analytics", "macOS 10.12.4+"),
    SetupPane("iCloudStorage", "iCloud Documents & Desktop", "macOS 10.13.4+"),
    SetupPane("iMessageAndFaceTime", "iMessage & FaceTime", "iOS 12+"),
    SetupPane("Intelligence", "Apple Intelligence", "iOS 18+, macOS 15+"),
    SetupPane("Keyboard", "Keyboard", "iOS 13+", "shown before the profile is fetched, so not always skippable"),
    SetupPane("LiquidGlass", "Liquid Glass", "iOS 27, macOS 27", "not yet confirmed by Apple"),
    SetupPane("Location", "Location Services", "iOS, iPadOS, macOS, tvOS"),
    SetupPane("MessagingActivationUsingPhoneNumber", "iMessage activation by phone number", "iOS 10+"),
    SetupPane("Multitasking", "Multitasking", "iOS 26+"),
    SetupPane("OnBoarding", "Onboarding information", "iOS 11+", "deprecated in iOS 14"),
    SetupPane("OSShowcase", "OS Showcase", "iOS 26+, macOS 26.1+"),
    SetupPane("Passcode", "Passcode", "iOS, iPadOS, macOS"),
    SetupPane("Payment", "Apple Pay", "iOS 8.1+, macOS 10.12.4+"),
    SetupPane("Privacy", "Data & Privacy", "iOS 11.3+, tvOS 11.3+, macOS 10.13.4+"),
    SetupPane("Restore", "Restore from backup", "iOS, iPadOS, macOS"),
    SetupPane("RestoreCompleted", "Restore completed", "iOS 14+"),
    SetupPane("Safety", "Safety", "iOS 16+"),
    SetupPane("SafetyAndHandling", "Safety & handling", "iOS 18.4+", "not always skippable"),
    SetupPane("ScreenSaver", "Aerial screensaver", "tvOS"),
    SetupPane("ScreenTime", "Screen Time", "iOS 12+, macOS 10.15+"),
    SetupPane("SIMSetup", "Add cellular plan", "iOS 12+"),
    SetupPane("Siri", "Siri", "iOS, iPadOS, macOS, tvOS"),
    SetupPane("SoftwareUpdate", "Software update", "iOS 12+, macOS 15.4+"),
    SetupPane("SpokenLanguage", "Dictation language", "iOS 13+", "not always skippable"),
    SetupPane("TapToSetup", "Tap to set up with iPhone", "tvOS"),
    SetupPane("TermsOfAddress", "Terms of address", "iOS 16+, macOS 13+", "not always skippable"),
    SetupPane("Tips", "Tips", "visionOS 26+"),
    SetupPane("TOS", "Terms and conditions", "iOS, iPadOS, macOS, tvOS"),
    SetupPane("TVHomeScreenSync", "Home screen sync", "tvOS 11+"),
    SetupPane("TVProviderSignIn", "TV provider sign-in", "tvOS 11+"),
    SetupPane("TVRoom", "Where is this Apple TV?", "tvOS 11.4+"),
    SetupPane("UnlockWithWatch", "Unlock with Apple Watch", "macOS"),
    SetupPane("UpdateCompleted", "Software update complete", "iOS 14+, macOS 26.1+"),
    SetupPane("Wallpaper", "Wallpaper", "macOS 14.1+", "deprecated"),
    SetupPane("WatchMigration", "Apple Watch migration", "iOS 11+"),
    SetupPane("WebContentFiltering", "Web content filtering", "iOS 18.2+"),
    SetupPane("Welcome", "Get started", "iOS 13+, macOS 15+"),
    SetupPane("Zoom", "Zoom", "iOS, macOS", "deprecated in iOS 17"),
)

_BY_FOLDED_KEY = {pane.key.casefold(): pane for pane in PANES}
_BY_FOLDED_NAME = {pane.name.casefold(): pane for pane in PANES}


def find_pane(text: str) -> SetupPane | None:
    """The pane named by its Apple key or its readable name, ignoring case; ``None`` when unknown."""
    folded = text.strip().casefold()
    return _BY_FOLDED_KEY.get(folded) or _BY_FOLDED_NAME.get(folded)


def get_pane(text: str) -> SetupPane:
    """The pane for ``text``, or :class:`InvalidInput` suggesting the nearest known keys."""
    pane = find_pane(text) if isinstance(text, str) and len(text) <= 100 else None
    if pane is not None:
        return pane
    shown = str(text)[:100]
    close = difflib.get_close_matches(shown, [p.key for p in PANES], n=3, cutoff=0.6)
    suggestion = f" Did you mean {', '.join(close)}?" if close else ""
    raise InvalidInput(
        f"{shown!r} is not a Setup Assistant pane Apple knows.{suggestion}",
        hint="Use one of Apple's skip_setup_items keys, e.g. Passcode, Siri, Location; "
        "`pippin profiles panes` lists them all.",
    )


def normalize_skip_keys(values: Iterable[str]) -> list[str]:
    """Apple's spelling of each key, duplicates dropped, in catalogue order (so equal sets compare equal)."""
    wanted = {get_pane(value).key for value in values}
    return [pane.key for pane in PANES if pane.key in wanted]
