#!/usr/bin/env python3
"""Generate the Voltway Electronics demo knowledge base in ``kb/``.

Run ``python3 scripts/make_demo_kb.py`` (stdlib only). The output is
deterministic: every random choice comes from one ``random.Random(7)`` and all
files are written in a fixed order, so re-running reproduces ``kb/``
byte-for-byte. Before writing anything the script checks referential integrity
(ids, brands, categories, template slots, minimum counts, conversation shape)
and exits with status 1 and a list of problems if a check fails.

Layout of this file:
  1. shop facts, needs and the category taxonomy
  2. product tables (devices, then accessories)
  3. answer templates
  4. users, service phrasings and recommendation phrasings
  5. builders (catalogue, KG, users, events, transcripts)
  6. self-checks and writing

Formats are documented in docs/formats.md.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
from datetime import datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KB_DIR = os.path.join(ROOT, "kb")
SEED = 7

# ============================================================ 1. shop, needs, taxonomy

SHOP = {
    "name": "Voltway Electronics",
    "currency": "USD",
    "support_email": "help@voltway.example",
    "support_phone": "1-800-555-0142",
    "website": "voltway.example",
    "hours": "Monday to Friday 8am-8pm ET and weekends 10am-6pm ET",
    "return_window_days": 30,
    "refund_days": "5-7 business days",
    "warranty_years": 2,
    "extended_warranty_years": 3,
    "free_shipping_threshold": 50,
    "standard_shipping_days": "3-5 business days",
    "express_shipping_days": "1-2 business days",
    "express_shipping_price": 9.99,
    "payment_methods": "Visa, Mastercard, American Express, PayPal, Apple Pay and Google Pay",
    "price_match_days": 14,
}

NEEDS = [
    "travel", "gaming", "fitness", "photography", "work-from-home", "students",
    "outdoors", "music", "kids", "fast-charging", "content-creation", "smart-home",
    "protection",
]

# child -> parent; every catalogue category is a leaf of this tree.
CATEGORY_PARENT = {
    "devices": "electronics",
    "accessories": "electronics",
    "audio": "electronics",
    "home-and-networking": "electronics",
    # devices
    "smartphones": "devices",
    "tablets": "devices",
    "laptops": "devices",
    "smartwatches": "devices",
    "fitness-trackers": "devices",
    "cameras": "devices",
    "drones": "devices",
    "gaming-consoles": "devices",
    "e-readers": "devices",
    # accessory groups
    "phone-accessories": "accessories",
    "wearable-accessories": "accessories",
    "tablet-accessories": "accessories",
    "computer-accessories": "accessories",
    "camera-accessories": "accessories",
    "charging": "accessories",
    "gaming-accessories": "accessories",
    # accessory leaves
    "phone-cases": "phone-accessories",
    "screen-protectors": "phone-accessories",
    "watch-bands": "wearable-accessories",
    "fitness-accessories": "wearable-accessories",
    "tablet-cases": "tablet-accessories",
    "styluses": "tablet-accessories",
    "e-reader-covers": "tablet-accessories",
    "laptop-bags": "computer-accessories",
    "mice": "computer-accessories",
    "keyboards": "computer-accessories",
    "monitors": "computer-accessories",
    "usb-hubs": "computer-accessories",
    "webcams": "computer-accessories",
    "storage": "computer-accessories",
    "camera-lenses": "camera-accessories",
    "memory-cards": "camera-accessories",
    "tripods": "camera-accessories",
    "camera-bags": "camera-accessories",
    "camera-batteries": "camera-accessories",
    "gimbals": "camera-accessories",
    "drone-accessories": "camera-accessories",
    "chargers": "charging",
    "power-banks": "charging",
    "cables": "charging",
    "game-controllers": "gaming-accessories",
    "gaming-headsets": "gaming-accessories",
    "console-cases": "gaming-accessories",
    "video-games": "gaming-accessories",
    # audio and home
    "headphones": "audio",
    "earbuds": "audio",
    "speakers": "audio",
    "smart-home": "home-and-networking",
    "routers": "home-and-networking",
}

DEVICE_CATEGORIES = [
    "smartphones", "tablets", "laptops", "smartwatches", "fitness-trackers",
    "cameras", "drones", "gaming-consoles", "e-readers",
]

# accessory category -> device categories it is an accessory of
ACCESSORY_OF = {
    "phone-cases": ["smartphones"],
    "screen-protectors": ["smartphones", "gaming-consoles"],
    "watch-bands": ["smartwatches", "fitness-trackers"],
    "fitness-accessories": ["smartwatches"],
    "tablet-cases": ["tablets"],
    "styluses": ["tablets", "smartphones"],
    "e-reader-covers": ["e-readers"],
    "laptop-bags": ["laptops"],
    "mice": ["laptops", "tablets"],
    "keyboards": ["laptops", "tablets"],
    "monitors": ["laptops", "gaming-consoles"],
    "usb-hubs": ["laptops", "tablets"],
    "webcams": ["laptops"],
    "storage": ["laptops", "gaming-consoles"],
    "camera-lenses": ["cameras"],
    "memory-cards": ["cameras", "drones", "gaming-consoles", "tablets", "smartphones"],
    "tripods": ["cameras"],
    "camera-bags": ["cameras", "drones"],
    "camera-batteries": ["cameras"],
    "gimbals": ["smartphones", "cameras"],
    "drone-accessories": ["drones"],
    "chargers": ["smartphones", "tablets", "laptops", "gaming-consoles", "smartwatches"],
    "power-banks": ["smartphones", "tablets", "laptops", "gaming-consoles"],
    "cables": ["smartphones", "tablets", "laptops", "gaming-consoles", "cameras"],
    "game-controllers": ["gaming-consoles"],
    "gaming-headsets": ["gaming-consoles"],
    "console-cases": ["gaming-consoles"],
    "video-games": ["gaming-consoles"],
    "headphones": ["smartphones", "tablets", "laptops"],
    "earbuds": ["smartphones", "tablets", "laptops"],
    "speakers": ["smartphones", "tablets", "laptops"],
}

# Categories whose items work with any Bluetooth phone, tablet or laptop. They
# get no compatible_with triples (that would link every phone to every
# headphone); their attributes say "connectivity": "Bluetooth".
UNIVERSAL_CATEGORIES = ["headphones", "earbuds", "speakers"]

# ============================================================ 2. product tables
#
# Items are declared with dev() / acc() into PRODUCTS, in catalogue order; ids
# VW-1001, VW-1002, ... are assigned in that order. Compatibility is given as
# device keys or "@group" names resolved against device tags (see GROUPS).

PRODUCTS: list[dict] = []


def dev(key, title, category, brand, price, short, aliases, series, needs, desc,
        attrs, tags=(), charge_w=None, oos=False):
    """Declare a device. ``short`` is how agents name it; ``tags`` drive @groups."""
    PRODUCTS.append(dict(key=key, title=title, category=category, brand=brand, price=price,
                         short=short, aliases=list(aliases), series=series, needs=list(needs),
                         desc=desc, attrs=attrs, tags=set(tags), charge_w=charge_w, oos=oos,
                         compat_spec=[]))


def acc(key, title, category, brand, price, desc, compat=(), needs=(), attrs=None,
        aliases=(), series=None, oos=False):
    """Declare an accessory (or standalone product such as a speaker or router)."""
    PRODUCTS.append(dict(key=key, title=title, category=category, brand=brand, price=price,
                         short=None, aliases=list(aliases), series=series, needs=list(needs),
                         desc=desc, attrs=dict(attrs or {}), tags=set(), charge_w=None, oos=oos,
                         compat_spec=list(compat)))


# ------------------------------------------------------------ devices: smartphones

def _phone(connector, wireless, magsafe, screen, battery, weight, color, storage, **extra):
    a = {"color": color, "storage_gb": storage, "screen_in": screen, "connector": connector,
         "wireless_charging": wireless, "magsafe": magsafe, "battery_mah": battery, "weight_g": weight}
    a.update(extra)
    return a


dev("pixel8", "Google Pixel 8 128GB Obsidian", "smartphones", "Google", 699.00, "Pixel 8",
    ["pixel 8"], "pixel-8", ["photography"],
    "Google's compact flagship with the Tensor G3 chip, a 6.2-inch Actua display and seven years of "
    "OS updates. Its 50 MP camera with Magic Eraser and Best Take makes great photos easy.",
    _phone("USB-C", True, False, 6.2, 4575, 187, "Obsidian", 128), tags={"usbc", "qi"}, charge_w=5)
dev("pixel8pro", "Google Pixel 8 Pro 128GB Bay", "smartphones", "Google", 999.00, "Pixel 8 Pro",
    ["pixel 8 pro"], "pixel-8", ["photography", "content-creation"],
    "The larger Pixel with a 6.7-inch Super Actua display and a triple camera with 5x telephoto and pro "
    "manual controls. It also gets seven years of OS and security updates.",
    _phone("USB-C", True, False, 6.7, 5050, 213, "Bay", 128), tags={"usbc", "qi"}, charge_w=5)
dev("pixel7", "Google Pixel 7 128GB Snow", "smartphones", "Google", 499.00, "Pixel 7",
    ["pixel 7"], "pixel-7", ["photography"],
    "Last generation's Pixel with Tensor G2, a 6.3-inch display and a dependable 50 MP main camera. "
    "A solid value pick while stock lasts.",
    _phone("USB-C", True, False, 6.3, 4355, 197, "Snow", 128), tags={"usbc", "qi"}, charge_w=5, oos=True)
dev("pixel7a", "Google Pixel 7a 128GB Charcoal", "smartphones", "Google", 449.00, "Pixel 7a",
    ["pixel 7a"], "pixel-7", ["students"],
    "An affordable Pixel with flagship-grade photo processing, a 90 Hz display and wireless charging. "
    "Great for anyone who wants Pixel smarts on a budget.",
    _phone("USB-C", True, False, 6.1, 4385, 194, "Charcoal", 128), tags={"usbc", "qi"}, charge_w=5)
dev("galaxy_s24", "Samsung Galaxy S24 128GB Onyx Black", "smartphones", "Samsung", 799.99, "Galaxy S24",
    ["galaxy s24", "s24"], "galaxy-s24", ["photography"],
    "Samsung's compact flagship with a 6.2-inch Dynamic AMOLED 2X screen, Galaxy AI features and a "
    "50 MP triple camera. Seven years of OS and security updates are included.",
    _phone("USB-C", True, False, 6.2, 4000, 167, "Onyx Black", 128), tags={"usbc", "qi"}, charge_w=5)
dev("galaxy_s24u", "Samsung Galaxy S24 Ultra 256GB Titanium Gray", "smartphones", "Samsung", 1299.99,
    "Galaxy S24 Ultra", ["galaxy s24 ultra", "s24 ultra"], "galaxy-s24",
    ["photography", "content-creation", "work-from-home"],
    "The top Galaxy with a titanium frame, a built-in S Pen and a 200 MP camera with 5x optical zoom. "
    "Its 6.8-inch anti-reflective display is superb outdoors.",
    _phone("USB-C", True, False, 6.8, 5000, 232, "Titanium Gray", 256, s_pen=True),
    tags={"usbc", "qi"}, charge_w=5)
dev("galaxy_s23", "Samsung Galaxy S23 128GB Phantom Black", "smartphones", "Samsung", 699.99, "Galaxy S23",
    ["galaxy s23", "s23"], "galaxy-s23", ["photography"],
    "Last year's compact Galaxy flagship with Snapdragon 8 Gen 2 for Galaxy and a bright 6.1-inch "
    "display. Still a fast, pocketable phone at a lower price.",
    _phone("USB-C", True, False, 6.1, 3900, 168, "Phantom Black", 128), tags={"usbc", "qi"}, charge_w=5)
dev("galaxy_a54", "Samsung Galaxy A54 5G 128GB Awesome Graphite", "smartphones", "Samsung", 449.99,
    "Galaxy A54", ["galaxy a54", "a54"], "galaxy-a", ["students"],
    "A mid-range Galaxy with a 120 Hz 6.4-inch display, IP67 water resistance and a two-day battery. "
    "It also takes a microSD card for extra storage.",
    _phone("USB-C", False, False, 6.4, 5000, 202, "Awesome Graphite", 128, microsd_slot=True),
    tags={"usbc", "microsd"}, charge_w=5)
dev("iphone15", "Apple iPhone 15 128GB Black", "smartphones", "Apple", 799.00, "iPhone 15",
    ["iphone 15"], "iphone-15", ["photography"],
    "iPhone 15 brings the Dynamic Island, a 48 MP main camera and USB-C charging. MagSafe lets it snap "
    "onto magnetic chargers and accessories.",
    _phone("USB-C", True, True, 6.1, 3349, 171, "Black", 128), tags={"usbc", "qi", "magsafe"}, charge_w=5)
dev("iphone15pro", "Apple iPhone 15 Pro 128GB Natural Titanium", "smartphones", "Apple", 999.00,
    "iPhone 15 Pro", ["iphone 15 pro"], "iphone-15", ["photography", "content-creation", "gaming"],
    "A titanium iPhone with the A17 Pro chip, a customisable Action button and a pro camera system "
    "with 3x telephoto. Its USB-C port supports fast USB 3 transfers.",
    _phone("USB-C", True, True, 6.1, 3274, 187, "Natural Titanium", 128),
    tags={"usbc", "qi", "magsafe"}, charge_w=5)
dev("iphone14", "Apple iPhone 14 128GB Midnight", "smartphones", "Apple", 699.00, "iPhone 14",
    ["iphone 14"], "iphone-14", ["photography"],
    "A dependable iPhone with the A15 Bionic chip, Crash Detection and a great dual camera. It charges "
    "over Lightning and supports MagSafe accessories.",
    _phone("Lightning", True, True, 6.1, 3279, 172, "Midnight", 128),
    tags={"lightning", "qi", "magsafe"}, charge_w=5)
dev("oneplus12", "OnePlus 12 256GB Flowy Emerald", "smartphones", "OnePlus", 799.99, "OnePlus 12",
    ["oneplus 12"], "oneplus-numbered", ["fast-charging", "gaming"],
    "A fast Android flagship with a 5,400 mAh battery and 80 W SUPERVOOC charging in the box. Its "
    "120 Hz display and Snapdragon 8 Gen 3 make it great for gaming.",
    _phone("USB-C", True, False, 6.82, 5400, 220, "Flowy Emerald", 256), tags={"usbc", "qi"}, charge_w=5)

# ------------------------------------------------------------ devices: tablets

dev("ipad_air", "Apple iPad Air 11-inch (M2) Wi-Fi 128GB Space Gray", "tablets", "Apple", 599.00,
    "iPad Air", ["ipad air"], "ipad-air", ["students", "work-from-home", "content-creation"],
    "The M2-powered iPad Air with an 11-inch Liquid Retina display and a landscape front camera. "
    "It works with Apple Pencil Pro and Apple Pencil (USB-C).",
    {"color": "Space Gray", "storage_gb": 128, "screen_in": 11.0, "connector": "USB-C", "weight_g": 462},
    tags={"usbc", "ipad"}, charge_w=5)
dev("ipad10", "Apple iPad (10th generation) Wi-Fi 64GB Blue", "tablets", "Apple", 349.00,
    "iPad (10th generation)", ["ipad 10th gen", "ipad 10", "ipad"], "ipad", ["students", "kids"],
    "A colourful all-screen iPad with a 10.9-inch display, the A14 Bionic chip and USB-C. A great first "
    "tablet for school, streaming and drawing.",
    {"color": "Blue", "storage_gb": 64, "screen_in": 10.9, "connector": "USB-C", "weight_g": 477},
    tags={"usbc", "ipad"}, charge_w=5)
dev("tab_s9", "Samsung Galaxy Tab S9 11-inch 128GB Graphite", "tablets", "Samsung", 799.99,
    "Galaxy Tab S9", ["galaxy tab s9", "tab s9"], "galaxy-tab-s9",
    ["students", "work-from-home", "content-creation"],
    "An 11-inch Dynamic AMOLED 2X tablet with IP68 water resistance and an S Pen in the box. Samsung "
    "DeX turns it into a laptop-style workspace.",
    {"color": "Graphite", "storage_gb": 128, "screen_in": 11.0, "connector": "USB-C", "weight_g": 498,
     "microsd_slot": True, "s_pen_included": True}, tags={"usbc", "microsd"}, charge_w=5)
dev("tab_p12", "Lenovo Tab P12 128GB Storm Grey", "tablets", "Lenovo", 329.99, "Lenovo Tab P12",
    ["lenovo tab p12", "tab p12"], "lenovo-tab-p", ["kids", "students"],
    "A big 12.7-inch 3K tablet with quad JBL speakers, great for streaming and homework. Storage is "
    "expandable with a microSD card.",
    {"color": "Storm Grey", "storage_gb": 128, "screen_in": 12.7, "connector": "USB-C", "weight_g": 615,
     "microsd_slot": True}, tags={"usbc", "microsd"}, charge_w=5)

# ------------------------------------------------------------ devices: laptops

dev("macbook_air", "Apple MacBook Air 13-inch (M3) 8GB 256GB Midnight", "laptops", "Apple", 1099.00,
    "MacBook Air", ["macbook air", "macbook"], "macbook-air", ["students", "travel", "work-from-home"],
    "A fanless, ultra-light laptop with Apple's M3 chip and up to 18 hours of battery life. The 13.6-inch "
    "Liquid Retina display is sharp and bright.",
    {"screen_in": 13.6, "ram_gb": 8, "storage_gb": 256, "weight_g": 1240, "battery_hours": 18,
     "ports": ["Thunderbolt / USB 4", "MagSafe 3", "headphone jack"], "os": "macOS"},
    tags={"usbc", "thunderbolt"}, charge_w=30)
dev("xps13", "Dell XPS 13 (9340) Core Ultra 7 16GB 512GB Platinum", "laptops", "Dell", 1399.99,
    "XPS 13", ["xps 13", "dell xps"], "xps", ["work-from-home", "travel"],
    "A premium 13.4-inch ultrabook with an Intel Core Ultra 7 processor and a seamless glass touchpad. "
    "Two Thunderbolt 4 ports handle charging, displays and docks.",
    {"screen_in": 13.4, "ram_gb": 16, "storage_gb": 512, "weight_g": 1190, "battery_hours": 14,
     "ports": ["Thunderbolt 4"], "os": "Windows 11"}, tags={"usbc", "thunderbolt"}, charge_w=45)
dev("thinkpad_x1", "Lenovo ThinkPad X1 Carbon Gen 12 Core Ultra 7 32GB 1TB", "laptops", "Lenovo", 1949.00,
    "ThinkPad X1 Carbon", ["thinkpad x1 carbon", "x1 carbon", "thinkpad"], "thinkpad-x1",
    ["work-from-home", "travel"],
    "A 1.09 kg business laptop with a class-leading keyboard, a 14-inch 2.8K OLED display and "
    "MIL-STD durability. HDMI and USB-A ports mean fewer dongles.",
    {"screen_in": 14.0, "ram_gb": 32, "storage_gb": 1024, "weight_g": 1090, "battery_hours": 15,
     "ports": ["Thunderbolt 4", "USB-A", "HDMI"], "os": "Windows 11"},
    tags={"usbc", "thunderbolt", "hdmi", "usb-a"}, charge_w=45)
dev("zenbook14", "ASUS Zenbook 14 OLED (UX3405) Core Ultra 7 16GB 1TB", "laptops", "ASUS", 1099.99,
    "Zenbook 14", ["zenbook 14", "zenbook"], "zenbook", ["students", "work-from-home", "content-creation"],
    "A slim 14-inch laptop with a vivid 3K OLED screen and all-day battery. It keeps USB-A and HDMI "
    "alongside two Thunderbolt 4 ports.",
    {"screen_in": 14.0, "ram_gb": 16, "storage_gb": 1024, "weight_g": 1200, "battery_hours": 15,
     "ports": ["Thunderbolt 4", "USB-A", "HDMI"], "os": "Windows 11"},
    tags={"usbc", "thunderbolt", "hdmi", "usb-a"}, charge_w=65)
dev("ideapad5", "Lenovo IdeaPad Slim 5 14-inch Ryzen 7 16GB 512GB", "laptops", "Lenovo", 749.99,
    "IdeaPad Slim 5", ["ideapad slim 5", "ideapad"], "ideapad-slim", ["students"],
    "A well-built everyday laptop with a Ryzen 7 processor, 16 GB of RAM and a 1080p webcam. Strong "
    "value for students and home offices.",
    {"screen_in": 14.0, "ram_gb": 16, "storage_gb": 512, "weight_g": 1460, "battery_hours": 12,
     "ports": ["USB-C", "USB-A", "HDMI"], "os": "Windows 11"}, tags={"usbc", "hdmi", "usb-a"}, charge_w=65)
dev("zephyrus_g14", "ASUS ROG Zephyrus G14 (2024) RTX 4060 16GB 1TB", "laptops", "ASUS", 1599.99,
    "ROG Zephyrus G14", ["zephyrus g14", "rog g14", "g14"], "rog-zephyrus", ["gaming", "content-creation"],
    "A 14-inch gaming laptop with an NVIDIA GeForce RTX 4060 and a 120 Hz 3K OLED display in a 1.5 kg "
    "aluminium chassis. Fast enough for AAA games and video editing.",
    {"screen_in": 14.0, "ram_gb": 16, "storage_gb": 1024, "weight_g": 1500, "battery_hours": 10,
     "gpu": "GeForce RTX 4060", "ports": ["USB4", "USB-C", "USB-A", "HDMI"], "os": "Windows 11"},
    tags={"usbc", "thunderbolt", "hdmi", "usb-a"}, charge_w=100)

# ------------------------------------------------------------ devices: wearables

dev("aw_s9", "Apple Watch Series 9 GPS 45mm Midnight Aluminum", "smartwatches", "Apple", 429.00,
    "Apple Watch Series 9", ["apple watch series 9", "apple watch s9", "apple watch"], "apple-watch",
    ["fitness"],
    "Apple's flagship watch with a brighter display, the double-tap gesture and advanced health sensors. "
    "It requires an iPhone.",
    {"case_mm": 45, "battery_hours": 18, "works_with": "iPhone", "water_resistance_m": 50},
    tags={"apple-watch"})
dev("aw_se", "Apple Watch SE (2nd generation) GPS 44mm Starlight Aluminum", "smartwatches", "Apple", 279.00,
    "Apple Watch SE", ["apple watch se"], "apple-watch", ["fitness", "kids"],
    "An affordable Apple Watch with Crash Detection, workout tracking and sleep stages. It requires an "
    "iPhone.",
    {"case_mm": 44, "battery_hours": 18, "works_with": "iPhone", "water_resistance_m": 50},
    tags={"apple-watch"})
dev("galaxy_watch6", "Samsung Galaxy Watch6 44mm Graphite", "smartwatches", "Samsung", 329.99,
    "Galaxy Watch6", ["galaxy watch6", "galaxy watch 6"], "galaxy-watch", ["fitness"],
    "A sleek Wear OS watch with body composition analysis, sleep coaching and a larger sapphire crystal "
    "display. It works with Android phones.",
    {"case_mm": 44, "band_mm": 20, "battery_hours": 40, "works_with": "Android"})
dev("pixel_watch2", "Google Pixel Watch 2 41mm Matte Black", "smartwatches", "Google", 349.99,
    "Pixel Watch 2", ["pixel watch 2", "pixel watch"], "pixel-watch", ["fitness"],
    "A domed, lightweight Wear OS watch with Fitbit health tracking and 24-hour battery life. It works "
    "with Android phones.",
    {"case_mm": 41, "battery_hours": 24, "works_with": "Android"})
dev("fr265", "Garmin Forerunner 265 Black", "smartwatches", "Garmin", 449.99, "Forerunner 265",
    ["forerunner 265", "fr265"], "forerunner", ["fitness", "outdoors"],
    "A GPS running watch with a bright AMOLED display, training readiness and up to 13 days of battery. "
    "It works with both iPhone and Android.",
    {"case_mm": 46, "band_mm": 22, "battery_hours": 312, "works_with": "iPhone and Android", "gps": True})
dev("fr255", "Garmin Forerunner 255 Slate Gray", "smartwatches", "Garmin", 349.99, "Forerunner 255",
    ["forerunner 255", "fr255"], "forerunner", ["fitness", "outdoors"],
    "A lightweight GPS running watch with multi-band GPS, HRV status and race-time predictions. Up to "
    "14 days of battery life.",
    {"case_mm": 46, "band_mm": 22, "battery_hours": 336, "works_with": "iPhone and Android", "gps": True},
    oos=True)
dev("charge6", "Fitbit Charge 6 Obsidian", "fitness-trackers", "Fitbit", 159.95, "Fitbit Charge 6",
    ["fitbit charge 6", "charge 6"], "fitbit-charge", ["fitness"],
    "A slim fitness tracker with built-in GPS, 24/7 heart-rate tracking and Google Wallet. Up to 7 days "
    "of battery life.",
    {"battery_hours": 168, "works_with": "iPhone and Android", "gps": True})

# ------------------------------------------------------------ devices: cameras and drones

dev("eos_r50", "Canon EOS R50 Mirrorless Camera Body Black", "cameras", "Canon", 679.99, "EOS R50",
    ["eos r50", "canon r50"], "eos-r", ["photography", "content-creation", "travel"],
    "A compact 24 MP APS-C mirrorless camera with fast Dual Pixel autofocus and uncropped 4K video. A great "
    "first step up from a phone.",
    {"sensor": "APS-C", "megapixels": 24.2, "mount": "Canon RF", "weight_g": 375, "video": "4K 30p",
     "card": "SD", "connector": "USB-C"}, tags={"usbc", "sd", "ilc"})
dev("sony_a7iv", "Sony Alpha 7 IV Full-Frame Mirrorless Camera Body", "cameras", "Sony", 2498.00,
    "Alpha 7 IV", ["a7 iv", "a7iv", "sony a7 iv"], "sony-alpha-7", ["photography", "content-creation"],
    "A 33 MP full-frame hybrid camera with real-time eye autofocus and 4K 60p video. A workhorse for "
    "serious photographers and filmmakers.",
    {"sensor": "Full frame", "megapixels": 33, "mount": "Sony E", "weight_g": 658, "video": "4K 60p",
     "card": "SD / CFexpress Type A", "connector": "USB-C"}, tags={"usbc", "sd", "ilc"})
dev("sony_zve10", "Sony ZV-E10 Mirrorless Vlog Camera with 16-50mm Lens Black", "cameras", "Sony", 799.99,
    "ZV-E10", ["zv-e10", "zve10"], "sony-zv", ["content-creation", "photography"],
    "A vlogging-focused interchangeable-lens camera with a flip-out screen, a directional microphone and "
    "product showcase mode. It comes with a 16-50mm kit lens.",
    {"sensor": "APS-C", "megapixels": 24.2, "mount": "Sony E", "weight_g": 343, "video": "4K 30p",
     "card": "SD", "connector": "Micro-USB"}, tags={"sd", "ilc"})
dev("fuji_xs20", "Fujifilm X-S20 Mirrorless Camera Body Black", "cameras", "Fujifilm", 1299.00, "X-S20",
    ["x-s20", "xs20", "fuji x-s20"], "fujifilm-x", ["photography", "content-creation", "travel"],
    "A compact 26 MP camera with in-body stabilisation, Fujifilm film simulations and 6.2K video. Its "
    "larger battery lasts up to 800 shots.",
    {"sensor": "APS-C", "megapixels": 26.1, "mount": "Fujifilm X", "weight_g": 491, "video": "6.2K 30p",
     "card": "SD", "connector": "USB-C"}, tags={"usbc", "sd", "ilc"})
dev("gopro12", "GoPro HERO12 Black", "cameras", "GoPro", 399.99, "GoPro HERO12 Black",
    ["gopro hero12", "hero12", "gopro"], "gopro-hero", ["outdoors", "content-creation", "travel"],
    "A rugged, waterproof action camera that shoots 5.3K video with HyperSmooth 6.0 stabilisation. Mount "
    "it on a helmet, bike or board.",
    {"megapixels": 27, "video": "5.3K 60p", "waterproof_m": 10, "weight_g": 154, "card": "microSD",
     "connector": "USB-C"}, tags={"usbc", "microsd"})
dev("dji_mini4", "DJI Mini 4 Pro with DJI RC 2", "drones", "DJI", 959.00, "DJI Mini 4 Pro",
    ["dji mini 4 pro", "mini 4 pro"], "dji-mini", ["photography", "content-creation", "outdoors", "travel"],
    "A sub-249 g camera drone with omnidirectional obstacle sensing and 4K/60fps HDR video. The DJI RC 2 "
    "screen controller is included.",
    {"weight_g": 249, "flight_minutes": 34, "video": "4K 60p HDR", "card": "microSD", "connector": "USB-C"},
    tags={"usbc", "microsd"})

# ------------------------------------------------------------ devices: consoles and e-readers

dev("ps5", "Sony PlayStation 5 Slim Console (Disc Edition)", "gaming-consoles", "Sony", 499.99, "PS5",
    ["ps5", "playstation 5"], "playstation", ["gaming"],
    "The slimmer PlayStation 5 with a 1 TB SSD, an Ultra HD Blu-ray drive and a DualSense controller. It "
    "supports 4K gaming at up to 120 fps.",
    {"storage_gb": 1024, "disc_drive": True, "max_resolution": "4K", "color": "White"}, tags={"hdmi"})
dev("xbox_x", "Microsoft Xbox Series X 1TB Console", "gaming-consoles", "Microsoft", 499.99, "Xbox Series X",
    ["xbox series x", "xbox"], "xbox", ["gaming"],
    "Microsoft's most powerful Xbox with true 4K gaming, Quick Resume and a 1 TB custom SSD. It plays "
    "hundreds of games through Game Pass.",
    {"storage_gb": 1024, "disc_drive": True, "max_resolution": "4K", "color": "Black"}, tags={"hdmi"})
dev("switch_oled", "Nintendo Switch OLED Model White", "gaming-consoles", "Nintendo", 349.99,
    "Nintendo Switch OLED", ["switch oled", "nintendo switch"], "nintendo-switch",
    ["gaming", "kids", "travel"],
    "The Switch with a vibrant 7-inch OLED screen, a wide adjustable stand and 64 GB of storage. Play on "
    "the TV or take it on the go.",
    {"storage_gb": 64, "screen_in": 7.0, "handheld": True, "microsd_slot": True, "color": "White"},
    tags={"usbc", "microsd", "hdmi"}, charge_w=18)
dev("steam_deck", "Valve Steam Deck OLED 512GB", "gaming-consoles", "Valve", 549.00, "Steam Deck OLED",
    ["steam deck oled", "steam deck"], "steam-deck", ["gaming", "travel"],
    "A handheld gaming PC with a 7.4-inch HDR OLED screen and up to 12 hours of battery. Play your Steam "
    "library anywhere.",
    {"storage_gb": 512, "screen_in": 7.4, "handheld": True, "microsd_slot": True},
    tags={"usbc", "microsd"}, charge_w=45, oos=True)
dev("kindle_pw", "Amazon Kindle Paperwhite 16GB Black", "e-readers", "Amazon", 149.99, "Kindle Paperwhite",
    ["kindle paperwhite", "kindle"], "kindle", ["travel", "students"],
    "A glare-free 6.8-inch e-reader with adjustable warm light, IPX8 waterproofing and weeks of battery "
    "life. It holds thousands of books.",
    {"screen_in": 6.8, "storage_gb": 16, "waterproof": True, "connector": "USB-C"}, tags={"usbc"})
dev("kobo_clara", "Kobo Clara 2E 16GB Deep Ocean Blue", "e-readers", "Kobo", 129.99, "Kobo Clara 2E",
    ["kobo clara 2e", "kobo clara", "kobo"], "kobo-clara", ["travel"],
    "A compact 6-inch e-reader made with recycled plastics, with ComfortLight PRO and waterproofing. "
    "Borrow library books straight from the device.",
    {"screen_in": 6.0, "storage_gb": 16, "waterproof": True, "connector": "USB-C"}, tags={"usbc"})

# ------------------------------------------------------------ phone cases
# Case descriptions by style; {d} is the phone's short name.
CASE_STYLES = {
    "slim": ("A slim, lightweight case that adds almost no bulk to your {d}. Precise cutouts keep the "
             "buttons, ports and camera easy to reach.", [], {"material": "Polycarbonate", "drop_protection_ft": 4}),
    "hybrid": ("A clear hybrid case that shows off the colour of your {d} while a shock-absorbing bumper "
               "guards the corners. The back resists yellowing over time.", [],
               {"material": "TPU and polycarbonate", "drop_protection_ft": 6}),
    "rugged": ("A heavy-duty case with dual-layer protection and raised edges for the screen and camera of "
               "your {d}. Built for drops, job sites and active kids.", ["protection", "outdoors", "kids"],
               {"material": "Synthetic rubber and polycarbonate", "drop_protection_ft": 10}),
    "protective": ("A sleek protective case for your {d} with a raised bezel and grippy sides. It survives "
                   "everyday drops without the bulk of a rugged case.", ["protection"],
                   {"material": "Synthetic rubber and polycarbonate", "drop_protection_ft": 8}),
    "silicone": ("The phone maker's own case for your {d}, with a soft microfibre lining and a velvety matte "
                 "finish. Designed alongside the phone for a perfect fit.", [],
                 {"material": "Silicone", "drop_protection_ft": 4}),
    "leather": ("A premium leather case for your {d} that develops a rich patina over time. Thin enough to "
                "stay pocketable.", [], {"material": "Horween leather", "drop_protection_ft": 6}),
    "pattern": ("A dual-layer case for your {d} with a textured geometric back that adds grip. Raised "
                "lips protect the screen and lenses.", ["protection"],
                {"material": "TPU and polycarbonate", "drop_protection_ft": 6}),
}

# (phone key, brand, line, price, style, color, out of stock)
PHONE_CASES = [
    ("pixel8", "Spigen", "Thin Fit Case", 24.99, "slim", "Black", False),
    ("pixel8", "OtterBox", "Commuter Series Case", 49.95, "protective", "Black", True),
    ("pixel8", "Google", "Case", 29.00, "silicone", "Charcoal", False),
    ("pixel8", "Caseology", "Parallax Case", 19.99, "pattern", "Sage Green", False),
    ("pixel8pro", "Spigen", "Liquid Air Case", 19.99, "slim", "Matte Black", False),
    ("pixel8pro", "OtterBox", "Symmetry Series Case", 49.95, "protective", "Black", False),
    ("pixel8pro", "Google", "Case", 29.00, "silicone", "Bay", False),
    ("pixel7", "Spigen", "Rugged Armor Case", 15.99, "rugged", "Matte Black", False),
    ("pixel7a", "Spigen", "Ultra Hybrid Case", 17.99, "hybrid", "Crystal Clear", False),
    ("pixel7a", "Google", "Case", 29.00, "silicone", "Charcoal", True),
    ("pixel7a", "Caseology", "Nano Pop Case", 16.99, "slim", "Blueberry Navy", False),
    ("galaxy_s24", "Samsung", "Silicone Case", 29.99, "silicone", "Black", True),
    ("galaxy_s24", "Spigen", "Ultra Hybrid Case", 19.99, "hybrid", "Crystal Clear", False),
    ("galaxy_s24", "OtterBox", "Defender Series Case", 59.95, "rugged", "Black", False),
    ("galaxy_s24", "Caseology", "Parallax Case", 19.99, "pattern", "Matte Black", False),
    ("galaxy_s24u", "Spigen", "Tough Armor Case", 24.99, "rugged", "Black", False),
    ("galaxy_s24u", "OtterBox", "Commuter Series Case", 49.95, "protective", "Black", False),
    ("galaxy_s24u", "Samsung", "Standing Grip Case", 59.99, "protective", "Titanium Gray", False),
    ("galaxy_s23", "Spigen", "Liquid Air Case", 15.99, "slim", "Matte Black", False),
    ("galaxy_s23", "OtterBox", "Symmetry Series Case", 44.95, "protective", "Black", False),
    ("galaxy_a54", "Spigen", "Rugged Armor Case", 14.99, "rugged", "Matte Black", False),
    ("galaxy_a54", "Poetic", "Revolution Case", 17.99, "rugged", "Black", False),
    ("iphone15", "Apple", "Silicone Case with MagSafe", 49.00, "silicone", "Storm Blue", False),
    ("iphone15", "Spigen", "Ultra Hybrid MagFit Case", 24.99, "hybrid", "Frost Clear", True),
    ("iphone15", "OtterBox", "Symmetry Series Case with MagSafe", 49.95, "protective", "Black", False),
    ("iphone15", "Nomad", "Modern Leather Case", 59.95, "leather", "Brown", False),
    ("iphone15pro", "Apple", "Clear Case with MagSafe", 49.00, "hybrid", "Clear", False),
    ("iphone15pro", "Spigen", "Tough Armor MagFit Case", 29.99, "rugged", "Black", False),
    ("iphone15pro", "OtterBox", "Defender Series XT Case", 69.95, "rugged", "Black", False),
    ("iphone15pro", "Nomad", "Modern Leather Case", 59.95, "leather", "Black", False),
    ("iphone14", "Apple", "Silicone Case with MagSafe", 49.00, "silicone", "Midnight", True),
    ("iphone14", "OtterBox", "Commuter Series Case", 39.95, "protective", "Black", False),
    ("iphone14", "Spigen", "Liquid Air Case", 15.99, "slim", "Matte Black", False),
    ("oneplus12", "Spigen", "Ultra Hybrid Case", 19.99, "hybrid", "Crystal Clear", False),
    ("oneplus12", "OnePlus", "Sandstone Bumper Case", 24.99, "slim", "Black", False),
]

# ------------------------------------------------------------ screen protectors
PROTECTOR_LINES = {
    ("Spigen", "GlasTR EZ Fit"): ("Two tempered-glass screen protectors for your {d} with an auto-alignment "
                                  "tray for bubble-free installation. The case-friendly cut works with most cases.",
                                  {"pack": 2, "material": "Tempered glass"}),
    ("ZAGG", "InvisibleShield Glass Elite"): ("Impact-resistant glass with a smudge-resistant coating, cut "
                                              "precisely for your {d}. It is backed by ZAGG's limited lifetime warranty.",
                                              {"pack": 1, "material": "Tempered glass"}),
    ("Belkin", "ScreenForce UltraGlass 2"): ("Ultra-thin, ion-strengthened glass sized for your {d} that is much "
                                             "stronger than ordinary tempered glass. It installs in seconds with the included tray.",
                                             {"pack": 1, "material": "Ion-strengthened glass"}),
    ("ESR", "Armorite"): ("Tough tempered glass with reinforced edges and an easy-install frame for your {d}. "
                          "Three protectors come in the pack.", {"pack": 3, "material": "Tempered glass"}),
    ("Whitestone", "Dome Glass"): ("A liquid-applied, UV-cured glass protector that keeps the fingerprint "
                                   "sensor of your {d} working perfectly. It gives edge-to-edge coverage.",
                                   {"pack": 1, "material": "Tempered glass"}),
}

# (device key, brand, line, price, out of stock)
SCREEN_PROTECTORS = [
    ("pixel8", "Spigen", "GlasTR EZ Fit", 19.99, False),
    ("pixel8", "ZAGG", "InvisibleShield Glass Elite", 39.99, True),
    ("pixel8pro", "Spigen", "GlasTR EZ Fit", 19.99, False),
    ("pixel8pro", "ZAGG", "InvisibleShield Glass Elite", 39.99, False),
    ("pixel7a", "Spigen", "GlasTR EZ Fit", 17.99, False),
    ("galaxy_s24", "Spigen", "GlasTR EZ Fit", 19.99, False),
    ("galaxy_s24", "ZAGG", "InvisibleShield Glass Elite", 39.99, False),
    ("galaxy_s24u", "Whitestone", "Dome Glass", 44.99, False),
    ("galaxy_s24u", "Spigen", "GlasTR EZ Fit", 21.99, False),
    ("galaxy_s23", "Spigen", "GlasTR EZ Fit", 17.99, False),
    ("galaxy_a54", "ESR", "Armorite", 13.99, False),
    ("iphone15", "ZAGG", "InvisibleShield Glass Elite", 44.99, False),
    ("iphone15", "Belkin", "ScreenForce UltraGlass 2", 39.99, False),
    ("iphone15", "Spigen", "GlasTR EZ Fit", 19.99, False),
    ("iphone15pro", "Belkin", "ScreenForce UltraGlass 2", 39.99, False),
    ("iphone15pro", "Spigen", "GlasTR EZ Fit", 19.99, False),
    ("iphone15pro", "ESR", "Armorite", 15.99, False),
    ("iphone14", "ZAGG", "InvisibleShield Glass Elite", 39.99, False),
    ("iphone14", "ESR", "Armorite", 13.99, False),
    ("oneplus12", "Whitestone", "Dome Glass", 39.99, False),
]


def _device_short(key):
    for p in PRODUCTS:
        if p["key"] == key:
            return p["short"]
    raise KeyError(key)


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def declare_cases_and_protectors():
    for dkey, brand, line, price, style, color, oos in PHONE_CASES:
        d = _device_short(dkey)
        desc, needs, attrs = CASE_STYLES[style]
        attrs = dict(attrs, color=color, style=style)
        if "MagSafe" in line or "MagFit" in line:
            attrs["magsafe_compatible"] = True
        acc(f"case-{dkey}-{_slug(brand + ' ' + line)}", f"{brand} {line} for {d}", "phone-cases", brand,
            price, desc.format(d=d), compat=[dkey], needs=needs, attrs=attrs, oos=oos)
    for dkey, brand, line, price, oos in SCREEN_PROTECTORS:
        d = _device_short(dkey)
        desc, attrs = PROTECTOR_LINES[(brand, line)]
        acc(f"sp-{dkey}-{_slug(brand)}", f"{brand} {line} Screen Protector for {d}", "screen-protectors",
            brand, price, desc.format(d=d), compat=[dkey], needs=["protection"], attrs=attrs, oos=oos)
    acc("sp-switch-amfilm", "amFilm Tempered Glass Screen Protector for Nintendo Switch OLED (2-Pack)",
        "screen-protectors", "amFilm", 10.99,
        "Two scratch-resistant glass protectors cut for the 7-inch Switch OLED screen. They keep the "
        "touchscreen fully responsive.", compat=["switch_oled"], needs=["protection", "kids"],
        attrs={"pack": 2, "material": "Tempered glass"})


declare_cases_and_protectors()

# ------------------------------------------------------------ wearable accessories
AW = ["aw_s9", "aw_se"]
GARMIN = ["fr265", "fr255"]
acc("band-aw-apple-sport", "Apple Sport Band 45mm Midnight (M/L)", "watch-bands", "Apple", 49.00,
    "Apple's soft fluoroelastomer band with a pin-and-tuck closure that stays put during workouts. Fits "
    "44mm and 45mm Apple Watch cases.", compat=AW, needs=["fitness"],
    attrs={"fits_case_mm": "44/45", "material": "Fluoroelastomer", "color": "Midnight"}, aliases=["apple sport band"])
acc("band-aw-nomad-sport", "Nomad Sport Band for Apple Watch 45mm Black", "watch-bands", "Nomad", 49.95,
    "A waterproof FKM rubber band with a low-profile pin closure and an aluminium lug. Fits 44mm and 45mm "
    "Apple Watch cases.", compat=AW, needs=["fitness", "outdoors"],
    attrs={"fits_case_mm": "44/45", "material": "FKM rubber", "color": "Black"}, oos=True)
acc("band-aw-spigen-litefit", "Spigen Lite Fit Band for Apple Watch 44/45mm Black", "watch-bands", "Spigen",
    14.99, "A budget-friendly silicone band with a breathable vented design. Fits 44mm and 45mm Apple "
    "Watch cases.", compat=AW, needs=["fitness"],
    attrs={"fits_case_mm": "44/45", "material": "Silicone", "color": "Black"})
acc("band-gw6-samsung-sport", "Samsung Sport Band for Galaxy Watch6 (M/L) Graphite", "watch-bands", "Samsung",
    29.99, "Samsung's official one-click sport band for the Galaxy Watch6. Soft and sweat-resistant for "
    "all-day wear.", compat=["galaxy_watch6"], needs=["fitness"],
    attrs={"band_mm": 20, "material": "Fluoroelastomer", "color": "Graphite"})
acc("band-gw6-spigen-rugged", "Spigen Rugged Band for Galaxy Watch6 44mm", "watch-bands", "Spigen", 19.99,
    "A tough TPU band with a carbon-fibre texture made for the Galaxy Watch6 44mm. It clicks on with "
    "standard quick-release pins.", compat=["galaxy_watch6"], needs=["outdoors", "fitness"],
    attrs={"band_mm": 20, "material": "TPU", "color": "Matte Black"})
acc("band-20mm-barton", "Barton Quick Release Silicone Watch Band 20mm Black", "watch-bands", "Barton", 19.99,
    "A soft silicone strap with tool-free quick-release pins that fits any watch with 20mm lugs, including "
    "the Galaxy Watch6.", compat=["galaxy_watch6"], needs=["fitness"],
    attrs={"band_mm": 20, "material": "Silicone", "color": "Black"})
acc("band-pw2-google-active", "Google Pixel Watch Active Sport Band Obsidian", "watch-bands", "Google", 49.99,
    "Google's lightweight sport band with a pin-and-tuck closure for the Pixel Watch. Comfortable for "
    "workouts and sleep tracking.", compat=["pixel_watch2"], needs=["fitness"],
    attrs={"material": "Fluoroelastomer", "color": "Obsidian"})
acc("band-pw2-nomad-sport", "Nomad Sport Band for Pixel Watch Black", "watch-bands", "Nomad", 49.95,
    "A waterproof FKM band with a custom-fit connector for the Pixel Watch. It holds up to sweat, "
    "sunscreen and salt water.", compat=["pixel_watch2"], needs=["fitness", "outdoors"],
    attrs={"material": "FKM rubber", "color": "Black"})
acc("band-22mm-garmin", "Garmin Quick Release Silicone Band 22mm Whitestone", "watch-bands", "Garmin", 29.99,
    "Garmin's own quick-release silicone band for 22mm Forerunner watches. Swap it in seconds without "
    "tools.", compat=GARMIN, needs=["fitness"],
    attrs={"band_mm": 22, "material": "Silicone", "color": "Whitestone"})
acc("band-22mm-barton", "Barton Quick Release Silicone Watch Band 22mm Black", "watch-bands", "Barton", 19.99,
    "A soft silicone strap with tool-free quick-release pins for watches with 22mm lugs, such as the "
    "Forerunner 265 and 255.", compat=GARMIN, needs=["fitness"],
    attrs={"band_mm": 22, "material": "Silicone", "color": "Black"})
acc("band-charge6-fitbit", "Fitbit Infinity Band for Charge 6 Porcelain", "watch-bands", "Fitbit", 34.95,
    "The official Fitbit band for Charge 6 with a secure loop-through closure. Light, sweat-resistant "
    "and easy to clean.", compat=["charge6"], needs=["fitness"],
    attrs={"material": "Silicone", "color": "Porcelain"})
acc("hrm-garmin-pro-plus", "Garmin HRM-Pro Plus Heart Rate Monitor Strap", "fitness-accessories", "Garmin",
    129.99, "A chest strap that sends accurate heart rate and running dynamics to your Forerunner. It "
    "stores data during swims and syncs later.", compat=GARMIN, needs=["fitness"],
    attrs={"connectivity": "ANT+ and Bluetooth", "battery_months": 12})
acc("hrm-wahoo-tickr", "Wahoo TICKR Heart Rate Monitor", "fitness-accessories", "Wahoo", 49.99,
    "An affordable Bluetooth and ANT+ chest strap for precise heart rate during intervals and strength "
    "sessions. Pairs with Garmin watches and Apple Watch.", compat=GARMIN + AW, needs=["fitness"],
    attrs={"connectivity": "ANT+ and Bluetooth", "battery_months": 12})

# ------------------------------------------------------------ tablet and e-reader accessories
acc("tc-ipadair-apple-folio", "Apple Smart Folio for iPad Air 11-inch (M2) Sage", "tablet-cases", "Apple",
    79.00, "A thin magnetic folio that protects the front and back of the iPad Air and wakes it when "
    "opened. It folds into a stand for typing or watching.", compat=["ipad_air"], needs=["students"],
    attrs={"color": "Sage", "material": "Polyurethane"})
acc("tc-ipadair-esr-rebound", "ESR Rebound Magnetic Case for iPad Air 11-inch (M2)", "tablet-cases", "ESR",
    29.99, "A lightweight magnetic case with a trifold stand and auto wake/sleep. It leaves the Apple "
    "Pencil edge free for charging.", compat=["ipad_air"], needs=["students", "travel"],
    attrs={"color": "Black", "material": "Polyurethane"})
acc("tc-ipadair-logi-combo", "Logitech Combo Touch Keyboard Case for iPad Air 11-inch (M2)", "tablet-cases",
    "Logitech", 199.99, "A backlit detachable keyboard with a large trackpad and a kickstand case for the "
    "iPad Air. It turns your iPad into a laptop for writing and spreadsheets.", compat=["ipad_air"],
    needs=["students", "work-from-home"], attrs={"color": "Oxford Gray", "keyboard": True}, oos=True)
acc("tc-ipad10-apple-folio", "Apple Smart Folio for iPad (10th generation) White", "tablet-cases", "Apple",
    79.00, "A slim magnetic folio for the iPad (10th generation) that folds into a stand. It wakes the "
    "iPad when you open it.", compat=["ipad10"], needs=["students"],
    attrs={"color": "White", "material": "Polyurethane"})
acc("tc-ipad10-otterbox-defender", "OtterBox Defender Series Case for iPad (10th generation)", "tablet-cases",
    "OtterBox", 79.95, "A multi-layer rugged case with a built-in screen protector and port covers for the "
    "iPad (10th generation). Made for classrooms, job sites and small hands.", compat=["ipad10"],
    needs=["kids", "protection"], attrs={"color": "Black", "drop_protection_ft": 10})
acc("tc-ipad10-fintie-kids", "Fintie Kids Shockproof Case for iPad (10th generation) Blue", "tablet-cases",
    "Fintie", 23.99, "A chunky, lightweight EVA foam case with a carry handle that doubles as a stand. "
    "Ideal for kids using the iPad (10th generation).", compat=["ipad10"], needs=["kids", "protection"],
    attrs={"color": "Blue", "material": "EVA foam"})
acc("tc-tabs9-samsung-bookcover", "Samsung Smart Book Cover for Galaxy Tab S9 Black", "tablet-cases", "Samsung",
    69.99, "Samsung's slim magnetic book cover for the Galaxy Tab S9 with two viewing angles. It snaps on "
    "and off in seconds.", compat=["tab_s9"], needs=["students"], attrs={"color": "Black"})
acc("tc-tabs9-spigen-liquidair", "Spigen Liquid Air Folio for Galaxy Tab S9", "tablet-cases", "Spigen", 29.99,
    "A grippy, textured folio with a built-in S Pen holder for the Galaxy Tab S9. Light enough for "
    "everyday carry.", compat=["tab_s9"], needs=["students", "travel"], attrs={"color": "Black"})
acc("tc-p12-lenovo-folio", "Lenovo Folio Case for Tab P12 Storm Grey", "tablet-cases", "Lenovo", 39.99,
    "Lenovo's fitted folio for the Tab P12 with an adjustable stand for movies and video calls.",
    compat=["tab_p12"], needs=["kids", "students"], attrs={"color": "Storm Grey"})
acc("tc-p12-moko", "MoKo Slim Stand Case for Lenovo Tab P12", "tablet-cases", "MoKo", 19.99,
    "A budget trifold case with a translucent back and a stand for the Lenovo Tab P12. Magnetic closure "
    "keeps it shut in a bag.", compat=["tab_p12"], needs=["travel"], attrs={"color": "Black"})
acc("pencil-usbc", "Apple Pencil (USB-C)", "styluses", "Apple", 79.00,
    "Apple's pixel-perfect stylus with low latency and tilt sensitivity for note-taking and sketching. "
    "It pairs and charges over USB-C.", compat=["ipad_air", "ipad10"], needs=["students", "content-creation"],
    attrs={"pressure_sensitive": False, "charging": "USB-C"}, aliases=["apple pencil usb-c"])
acc("pencil-pro", "Apple Pencil Pro", "styluses", "Apple", 129.00,
    "Apple's most advanced stylus with pressure sensitivity, squeeze and barrel-roll gestures and haptic "
    "feedback. It attaches magnetically to the iPad Air (M2).", compat=["ipad_air"],
    needs=["content-creation", "students"], attrs={"pressure_sensitive": True, "charging": "Magnetic"},
    aliases=["apple pencil pro"])
acc("crayon-usbc", "Logitech Crayon (USB-C)", "styluses", "Logitech", 69.99,
    "A durable, easy-grip digital pencil for iPad with palm rejection and tilt support. Great for students "
    "and kids who need an Apple Pencil alternative.", compat=["ipad_air", "ipad10"], needs=["students", "kids"],
    attrs={"pressure_sensitive": False, "charging": "USB-C"}, aliases=["logitech crayon"])
acc("spen-creator", "Samsung Galaxy S Pen Creator Edition", "styluses", "Samsung", 99.99,
    "A full-size S Pen with 4,096 pressure levels and a comfortable pen-like grip. Works with the Galaxy "
    "Tab S9 and Galaxy S24 Ultra.", compat=["tab_s9", "galaxy_s24u"], needs=["content-creation", "students"],
    attrs={"pressure_sensitive": True, "charging": "None needed"}, aliases=["s pen creator edition"])
acc("pen-lenovo-plus", "Lenovo Tab Pen Plus", "styluses", "Lenovo", 59.99,
    "Lenovo's active pen for the Tab P12 with 4,096 pressure levels and a magnetic attachment. Handy for "
    "handwritten notes and sketches.", compat=["tab_p12"], needs=["students"],
    attrs={"pressure_sensitive": True, "charging": "USB-C"})
acc("cover-kindle-amazon", "Amazon Kindle Paperwhite Fabric Cover Black", "e-reader-covers", "Amazon", 34.99,
    "Amazon's slim fabric cover for the Kindle Paperwhite that wakes and sleeps the reader automatically.",
    compat=["kindle_pw"], needs=["travel"], attrs={"material": "Fabric", "color": "Black"})
acc("cover-kindle-fintie", "Fintie Slimshell Case for Kindle Paperwhite", "e-reader-covers", "Fintie", 15.99,
    "A lightweight vegan-leather shell case with auto wake/sleep for the Kindle Paperwhite. Available in "
    "dozens of prints.", compat=["kindle_pw"], needs=["travel"], attrs={"material": "Vegan leather", "color": "Navy"})
acc("cover-kobo-sleepcover", "Kobo Clara 2E SleepCover Deep Ocean Blue", "e-reader-covers", "Kobo", 34.99,
    "Kobo's magnetic SleepCover that doubles as a stand and puts the Clara 2E to sleep when closed.",
    compat=["kobo_clara"], needs=["travel"], attrs={"material": "Recycled plastic", "color": "Deep Ocean Blue"})

# ------------------------------------------------------------ computer accessories
LAPTOPS_13 = ["macbook_air", "xps13"]
LAPTOPS_14 = ["thinkpad_x1", "zenbook14", "ideapad5", "zephyrus_g14"]
acc("bag-tomtoc-13", "tomtoc 360 Protective Laptop Sleeve 13-inch Gray", "laptop-bags", "tomtoc", 29.99,
    "A padded sleeve with corner armour that protects 13-inch laptops such as the MacBook Air and XPS 13 "
    "from bumps. The front pocket holds a charger and cables.", compat=LAPTOPS_13, needs=["travel", "students"],
    attrs={"fits_laptop_in": 13, "water_resistant": True})
acc("bag-tomtoc-14", "tomtoc 360 Protective Laptop Sleeve 14-inch Gray", "laptop-bags", "tomtoc", 32.99,
    "The 14-inch version of tomtoc's corner-armoured sleeve, sized for laptops like the ThinkPad X1 Carbon "
    "and Zenbook 14. Slips easily into a backpack.", compat=LAPTOPS_14, needs=["travel", "students"],
    attrs={"fits_laptop_in": 14, "water_resistant": True})
acc("bag-incase-13", "Incase Icon Sleeve with Woolenex 13-inch", "laptop-bags", "Incase", 69.95,
    "A minimalist sleeve made of durable Woolenex with a faux-fur lining for 13-inch laptops.",
    compat=LAPTOPS_13, needs=["travel", "work-from-home"], attrs={"fits_laptop_in": 13}, oos=True)
acc("bag-bellroy-14", "Bellroy Laptop Sleeve 14-inch Black", "laptop-bags", "Bellroy", 89.00,
    "A slim, water-resistant sleeve with a magnetic closure and a hidden cable pocket for 14-inch laptops.",
    compat=LAPTOPS_14, needs=["travel", "work-from-home"], attrs={"fits_laptop_in": 14, "water_resistant": True})
acc("bag-peak-everyday-20", "Peak Design Everyday Backpack 20L Black", "laptop-bags", "Peak Design", 279.95,
    "A weatherproof everyday backpack with a padded sleeve for laptops up to 16 inches and origami-style "
    "dividers for camera gear. Side access makes it a favourite of travelling photographers.",
    compat=LAPTOPS_13 + LAPTOPS_14, needs=["travel", "photography"], attrs={"capacity_l": 20, "fits_laptop_in": 16})
acc("bag-targus-citylite", "Targus CityLite Pro Backpack 15.6-inch", "laptop-bags", "Targus", 59.99,
    "A practical commuter backpack with a padded laptop compartment, a trolley strap and plenty of "
    "organiser pockets.", compat=LAPTOPS_13 + LAPTOPS_14, needs=["students", "travel"],
    attrs={"capacity_l": 24, "fits_laptop_in": 15.6})

acc("mouse-mx-master-3s", "Logitech MX Master 3S Wireless Mouse Graphite", "mice", "Logitech", 99.99,
    "An ergonomic productivity mouse with quiet clicks, an 8K DPI sensor and the MagSpeed scroll wheel. It "
    "connects over Bluetooth or the Bolt receiver to up to three computers.", compat=["@laptops", "@tablets"],
    needs=["work-from-home"], attrs={"connectivity": "Bluetooth", "wireless": True, "battery_days": 70},
    aliases=["mx master 3s"])
acc("mouse-g502x", "Logitech G502 X Lightspeed Wireless Gaming Mouse", "mice", "Logitech", 139.99,
    "A wireless gaming mouse with hybrid optical-mechanical switches, a HERO 25K sensor and 13 programmable "
    "controls. Uses a USB-A Lightspeed receiver.", compat=["@usba-laptops"], needs=["gaming"],
    attrs={"connectivity": "USB-A receiver", "wireless": True, "weight_g": 102})
acc("mouse-deathadder-v3pro", "Razer DeathAdder V3 Pro Wireless Gaming Mouse", "mice", "Razer", 149.99,
    "An ultra-light 63 g esports mouse with Razer's Focus Pro 30K sensor and up to 90 hours of battery. "
    "Uses a USB-A HyperSpeed receiver.", compat=["@usba-laptops"], needs=["gaming"],
    attrs={"connectivity": "USB-A receiver", "wireless": True, "weight_g": 63})
acc("mouse-magic", "Apple Magic Mouse (USB-C) White", "mice", "Apple", 79.00,
    "Apple's sleek multi-touch mouse with gesture support, now charging over USB-C. Works with Mac and iPad.",
    compat=["macbook_air", "ipad_air", "ipad10"], needs=["work-from-home"],
    attrs={"connectivity": "Bluetooth", "wireless": True})
acc("mouse-pebble-m350s", "Logitech Pebble Mouse 2 M350s Graphite", "mice", "Logitech", 24.99,
    "A slim, silent Bluetooth mouse that fits in any pocket. Up to 24 months of battery life.",
    compat=["@laptops", "@tablets"], needs=["students", "travel"],
    attrs={"connectivity": "Bluetooth", "wireless": True, "battery_days": 730})
acc("kb-mx-keys-s", "Logitech MX Keys S Wireless Keyboard Graphite", "keyboards", "Logitech", 109.99,
    "A full-size, backlit keyboard with spherically dished keys and smart illumination. Switch between three "
    "devices at the press of a key.", compat=["@laptops", "@tablets"], needs=["work-from-home"],
    attrs={"connectivity": "Bluetooth", "layout": "Full size", "backlit": True}, aliases=["mx keys"])
acc("kb-keychron-k2", "Keychron K2 Wireless Mechanical Keyboard (Brown Switches)", "keyboards", "Keychron",
    79.99, "A compact 75% mechanical keyboard with Mac and Windows keycaps and up to three Bluetooth "
    "connections. Brown switches give a quiet, tactile feel.", compat=["@laptops", "@tablets"],
    needs=["work-from-home", "gaming"], attrs={"connectivity": "Bluetooth", "layout": "75%", "backlit": True})
acc("kb-blackwidow-v4", "Razer BlackWidow V4 75% Mechanical Gaming Keyboard", "keyboards", "Razer", 189.99,
    "A hot-swappable 75% gaming keyboard with tactile switches, per-key RGB lighting and a plush wrist rest. "
    "Connects with a USB-C to USB-A cable.", compat=["@usba-laptops"], needs=["gaming"],
    attrs={"connectivity": "Wired USB-A", "layout": "75%", "backlit": True})
acc("kb-magic", "Apple Magic Keyboard (USB-C) US English", "keyboards", "Apple", 99.00,
    "Apple's slim wireless keyboard with a stable scissor mechanism, now charging over USB-C. Works with "
    "Mac and iPad.", compat=["macbook_air", "ipad_air", "ipad10"], needs=["work-from-home", "students"],
    attrs={"connectivity": "Bluetooth", "layout": "Compact", "backlit": False})
acc("kb-pebble-keys-2", "Logitech Pebble Keys 2 K380s Tonal Graphite", "keyboards", "Logitech", 39.99,
    "A compact, quiet Bluetooth keyboard that switches between three devices. Slim enough for a laptop bag.",
    compat=["@laptops", "@tablets"], needs=["students", "travel"],
    attrs={"connectivity": "Bluetooth", "layout": "Compact", "backlit": False})
MONITOR_HDMI = ["@hdmi-laptops", "@hdmi-consoles"]
MONITOR_USBC = ["@laptops", "@hdmi-consoles", "steam_deck"]
acc("mon-dell-u2723qe", "Dell UltraSharp 27 4K USB-C Hub Monitor (U2723QE)", "monitors", "Dell", 579.99,
    "A colour-accurate 27-inch 4K IPS Black monitor with a 90 W USB-C hub that charges your laptop over "
    "one cable. Ideal for a tidy home office.", compat=MONITOR_USBC, needs=["work-from-home", "content-creation"],
    attrs={"screen_in": 27, "resolution": "3840x2160", "refresh_hz": 60, "usb_c_power_w": 90})
acc("mon-lg-27gp850", "LG UltraGear 27GP850-B 27-inch QHD 180Hz Gaming Monitor", "monitors", "LG", 349.99,
    "A fast Nano IPS gaming monitor with a 1 ms response time and G-SYNC compatibility. Sharp QHD and "
    "smooth frame rates for PC and console.", compat=MONITOR_HDMI, needs=["gaming"],
    attrs={"screen_in": 27, "resolution": "2560x1440", "refresh_hz": 180})
acc("mon-samsung-g5", "Samsung Odyssey G5 27-inch QHD 165Hz Curved Gaming Monitor", "monitors", "Samsung",
    269.99, "An immersive 1000R curved QHD gaming monitor with a 165 Hz refresh rate and HDR10. A strong "
    "value pick for gamers.", compat=MONITOR_HDMI, needs=["gaming"],
    attrs={"screen_in": 27, "resolution": "2560x1440", "refresh_hz": 165, "curved": True})
acc("mon-asus-pa278cv", "ASUS ProArt PA278CV 27-inch QHD USB-C Monitor", "monitors", "ASUS", 329.00,
    "A factory-calibrated 27-inch QHD monitor covering 100% sRGB, with 65 W USB-C charging. Built for "
    "photo editing and design work.", compat=MONITOR_USBC, needs=["content-creation", "photography", "work-from-home"],
    attrs={"screen_in": 27, "resolution": "2560x1440", "refresh_hz": 75, "usb_c_power_w": 65})
acc("mon-dell-se2425h", "Dell 24 Monitor SE2425H", "monitors", "Dell", 109.99,
    "An affordable 24-inch Full HD monitor with thin bezels and a 75 Hz refresh rate. A simple second "
    "screen for homework or the home office.", compat=MONITOR_HDMI, needs=["students", "work-from-home"],
    attrs={"screen_in": 23.8, "resolution": "1920x1080", "refresh_hz": 75})
acc("hub-anker-341", "Anker 341 USB-C Hub (7-in-1)", "usb-hubs", "Anker", 34.99,
    "A pocket-size hub that adds 4K HDMI, two USB-A ports, SD and microSD readers and 100 W pass-through "
    "charging to any USB-C laptop or tablet.", compat=["@laptops", "@ipads", "tab_s9", "steam_deck"],
    needs=["work-from-home", "travel", "photography"], attrs={"ports": ["HDMI", "USB-A", "SD", "microSD", "USB-C PD"]})
acc("hub-satechi-v2", "Satechi USB-C Multiport Adapter V2 Space Gray", "usb-hubs", "Satechi", 79.99,
    "An aluminium multiport adapter with 4K HDMI, Gigabit Ethernet, card readers and USB-C charging "
    "pass-through. Matches Apple laptops and iPads.", compat=["@laptops", "@ipads"], needs=["work-from-home"],
    attrs={"ports": ["HDMI", "Ethernet", "USB-A", "SD", "microSD", "USB-C PD"]})
acc("dock-caldigit-ts4", "CalDigit TS4 Thunderbolt 4 Dock", "usb-hubs", "CalDigit", 399.99,
    "A premium 18-port Thunderbolt 4 dock with 98 W laptop charging, 2.5 GbE and support for dual 4K "
    "displays. One cable connects your whole desk.", compat=["@tb-laptops"], needs=["work-from-home", "content-creation"],
    attrs={"ports": ["Thunderbolt 4", "USB-A", "USB-C", "DisplayPort", "2.5GbE", "SD"], "charging_w": 98})
acc("cam-logi-c920s", "Logitech C920s Pro HD Webcam", "webcams", "Logitech", 69.99,
    "A dependable 1080p webcam with dual microphones, auto light correction and a privacy shutter. Plugs "
    "into a USB-A port.", compat=["@usba-laptops"], needs=["work-from-home", "students"],
    attrs={"resolution": "1080p", "connector": "USB-A"})
acc("cam-logi-brio500", "Logitech Brio 500 Full HD Webcam Graphite", "webcams", "Logitech", 129.99,
    "A 1080p webcam with RightLight 4 low-light correction, auto framing and a USB-C cable. Looks sharp on "
    "every video call.", compat=["@laptops"], needs=["work-from-home", "content-creation"],
    attrs={"resolution": "1080p", "connector": "USB-C"})
acc("ssd-samsung-t7", "Samsung T7 Portable SSD 1TB Titan Gray", "storage", "Samsung", 89.99,
    "A palm-size USB-C SSD with transfer speeds up to 1,050 MB/s in a shock-resistant aluminium body. "
    "Ideal for backups and photo libraries.", compat=["@laptops", "@ipads", "tab_s9"],
    needs=["photography", "content-creation", "travel"], attrs={"capacity_gb": 1000, "read_mbps": 1050, "connector": "USB-C"})
acc("ssd-sandisk-extreme-2tb", "SanDisk Extreme Portable SSD 2TB", "storage", "SanDisk", 159.99,
    "A rugged, IP65 portable SSD with a carabiner loop and up to 1,050 MB/s transfers. Built to survive "
    "shoots and road trips.", compat=["@laptops", "@ipads", "tab_s9"],
    needs=["photography", "outdoors", "content-creation"], attrs={"capacity_gb": 2000, "read_mbps": 1050, "connector": "USB-C"})
acc("ssd-wd-sn850x", "WD_BLACK SN850X 2TB NVMe SSD with Heatsink", "storage", "Western Digital", 179.99,
    "A PCIe Gen4 internal SSD with a heatsink that meets the PS5's expansion-slot requirements. Doubles your "
    "game library with load times as fast as the built-in drive.", compat=["ps5"], needs=["gaming"],
    attrs={"capacity_gb": 2000, "read_mbps": 7300, "interface": "PCIe Gen4 NVMe"})
acc("ssd-seagate-xbox", "Seagate Storage Expansion Card for Xbox Series X|S 1TB", "storage", "Seagate", 149.99,
    "A plug-in expansion card that adds 1 TB with exactly the same performance as the Xbox's internal SSD. "
    "Quick Resume works across both drives.", compat=["xbox_x"], needs=["gaming"], attrs={"capacity_gb": 1000})

# ------------------------------------------------------------ camera accessories
SD_CAMS = ["@sd"]
acc("lens-canon-rf50", "Canon RF 50mm F1.8 STM Lens", "camera-lenses", "Canon", 199.00,
    "A tiny, affordable prime with a bright f/1.8 aperture for portraits with soft backgrounds. On the "
    "EOS R50 it acts like an 80mm portrait lens.", compat=["eos_r50"], needs=["photography"],
    attrs={"mount": "Canon RF", "focal_length_mm": "50", "max_aperture": "f/1.8", "weight_g": 160})
acc("lens-canon-rfs55210", "Canon RF-S 55-210mm F5-7.1 IS STM Lens", "camera-lenses", "Canon", 349.00,
    "A light telephoto zoom with image stabilisation for sports, wildlife and travel. Designed for "
    "APS-C cameras like the EOS R50.", compat=["eos_r50"], needs=["photography", "travel", "outdoors"],
    attrs={"mount": "Canon RF", "focal_length_mm": "55-210", "max_aperture": "f/5-7.1", "weight_g": 270})
acc("lens-canon-rf16", "Canon RF 16mm F2.8 STM Lens", "camera-lenses", "Canon", 299.00,
    "An ultra-wide pancake lens for landscapes, interiors and vlogging at arm's length. Weighs only 165 g.",
    compat=["eos_r50"], needs=["photography", "content-creation", "travel"],
    attrs={"mount": "Canon RF", "focal_length_mm": "16", "max_aperture": "f/2.8", "weight_g": 165})
acc("lens-sony-fe50", "Sony FE 50mm F1.8 Lens", "camera-lenses", "Sony", 248.00,
    "A compact full-frame prime for natural-looking portraits and low-light shots. Works on both "
    "full-frame and APS-C Sony E-mount bodies.", compat=["sony_a7iv", "sony_zve10"], needs=["photography"],
    attrs={"mount": "Sony E", "focal_length_mm": "50", "max_aperture": "f/1.8", "weight_g": 186})
acc("lens-sony-fe24105", "Sony FE 24-105mm F4 G OSS Lens", "camera-lenses", "Sony", 1098.00,
    "A versatile stabilised standard zoom with constant f/4 for weddings, travel and video. A favourite "
    "everyday lens on the Alpha 7 IV.", compat=["sony_a7iv", "sony_zve10"],
    needs=["photography", "travel", "content-creation"],
    attrs={"mount": "Sony E", "focal_length_mm": "24-105", "max_aperture": "f/4", "weight_g": 663}, oos=True)
acc("lens-sony-e11", "Sony E 11mm F1.8 Lens", "camera-lenses", "Sony", 549.99,
    "A bright ultra-wide prime made for APS-C vlogging cameras like the ZV-E10. Keeps you and the scene in "
    "frame when filming at arm's length.", compat=["sony_zve10"], needs=["content-creation", "photography"],
    attrs={"mount": "Sony E", "focal_length_mm": "11", "max_aperture": "f/1.8", "weight_g": 181})
acc("lens-sigma-1850-e", "Sigma 18-50mm F2.8 DC DN Contemporary Lens for Sony E", "camera-lenses", "Sigma",
    549.00, "A compact, constant f/2.8 standard zoom for APS-C Sony cameras. A big low-light upgrade over "
    "the kit lens.", compat=["sony_zve10"], needs=["photography", "content-creation", "travel"],
    attrs={"mount": "Sony E", "focal_length_mm": "18-50", "max_aperture": "f/2.8", "weight_g": 290})
acc("lens-sigma-1850-x", "Sigma 18-50mm F2.8 DC DN Contemporary Lens for Fujifilm X", "camera-lenses", "Sigma",
    549.00, "The X-mount version of Sigma's compact f/2.8 zoom, a perfect everyday match for the X-S20.",
    compat=["fuji_xs20"], needs=["photography", "travel"],
    attrs={"mount": "Fujifilm X", "focal_length_mm": "18-50", "max_aperture": "f/2.8", "weight_g": 300})
acc("lens-tamron-2875", "Tamron 28-75mm F/2.8 Di III VXD G2 Lens for Sony E", "camera-lenses", "Tamron", 879.00,
    "A fast, sharp full-frame standard zoom with quick, quiet autofocus. A popular alternative to Sony's "
    "G Master zooms.", compat=["sony_a7iv", "sony_zve10"], needs=["photography", "content-creation"],
    attrs={"mount": "Sony E", "focal_length_mm": "28-75", "max_aperture": "f/2.8", "weight_g": 540})
acc("lens-fuji-xf35", "Fujifilm XF 35mm F2 R WR Lens", "camera-lenses", "Fujifilm", 399.00,
    "A weather-resistant, fast-focusing normal prime with classic Fujifilm rendering. Small enough to "
    "leave on the camera all day.", compat=["fuji_xs20"], needs=["photography", "travel"],
    attrs={"mount": "Fujifilm X", "focal_length_mm": "35", "max_aperture": "f/2", "weight_g": 170})
acc("sd-sandisk-extremepro-128", "SanDisk Extreme PRO 128GB SDXC UHS-I Card", "memory-cards", "SanDisk", 26.99,
    "A fast, reliable SD card with up to 200 MB/s reads, rated V30 for 4K video. The go-to card for "
    "mirrorless cameras.", compat=SD_CAMS, needs=["photography", "content-creation"],
    attrs={"capacity_gb": 128, "format": "SDXC", "speed_class": "V30"})
acc("sd-lexar-1800x-128", "Lexar Professional 1800x 128GB SDXC UHS-II Card", "memory-cards", "Lexar", 89.99,
    "A UHS-II card with 270 MB/s reads for fast burst shooting and quick offloads. Backwards compatible "
    "with UHS-I cameras.", compat=SD_CAMS, needs=["photography"],
    attrs={"capacity_gb": 128, "format": "SDXC", "speed_class": "V60"})
acc("msd-sandisk-extreme-256", "SanDisk Extreme 256GB microSDXC Card", "memory-cards", "SanDisk", 29.99,
    "A rugged A2, V30 microSD card for 4K action footage, drones and handheld consoles. Includes an SD "
    "adapter.", compat=["@microsd"], needs=["content-creation", "gaming", "outdoors"],
    attrs={"capacity_gb": 256, "format": "microSDXC", "speed_class": "V30"})
acc("msd-samsung-proplus-512", "Samsung PRO Plus 512GB microSDXC Card", "memory-cards", "Samsung", 44.99,
    "A high-capacity microSD card with 180 MB/s reads, plenty of room for games, 4K video and offline "
    "media.", compat=["@microsd"], needs=["gaming", "content-creation"],
    attrs={"capacity_gb": 512, "format": "microSDXC", "speed_class": "V30"})
acc("msd-sandisk-switch-256", "SanDisk 256GB microSDXC Card for Nintendo Switch", "memory-cards", "SanDisk",
    34.99, "An officially licensed microSD card with a fun Nintendo design that holds dozens of downloaded "
    "games. Works in any microSD slot.", compat=["@microsd"], needs=["gaming", "kids"],
    attrs={"capacity_gb": 256, "format": "microSDXC", "speed_class": "U3"})
acc("msd-kingston-canvas-128", "Kingston Canvas Go! Plus 128GB microSDXC Card", "memory-cards", "Kingston", 14.99,
    "A budget-friendly A2, V30 microSD card for phones, cameras and tablets. Includes an SD adapter.",
    compat=["@microsd"], needs=["students"], attrs={"capacity_gb": 128, "format": "microSDXC", "speed_class": "V30"},
    oos=True)
acc("tripod-manfrotto-pixi", "Manfrotto PIXI Mini Tripod Black", "tripods", "Manfrotto", 34.99,
    "A pocket tripod that doubles as a vlogging grip, with a push-button ball head. Holds compact mirrorless "
    "cameras up to 1 kg.", compat=["eos_r50", "sony_zve10", "fuji_xs20"], needs=["content-creation", "travel"],
    attrs={"max_load_kg": 1.0, "height_cm": 13.5})
acc("tripod-joby-gp3k", "JOBY GorillaPod 3K Kit", "tripods", "JOBY", 79.95,
    "A flexible-leg tripod that wraps around railings and branches, with a ball head for cameras up to "
    "3 kg. Great for creative angles on the go.", compat=["@ilc"], needs=["photography", "content-creation", "outdoors"],
    attrs={"max_load_kg": 3.0, "height_cm": 30})
acc("tripod-peak-travel", "Peak Design Travel Tripod Aluminum", "tripods", "Peak Design", 399.95,
    "A full-height tripod that packs down to the diameter of a water bottle. Sets up in seconds and holds "
    "9 kg.", compat=["@ilc"], needs=["photography", "travel"], attrs={"max_load_kg": 9.1, "height_cm": 152},
    oos=True)
acc("tripod-gopro-shorty", "GoPro Shorty Mini Extension Pole + Tripod", "tripods", "GoPro", 39.99,
    "A pocket-size extension pole for GoPro cameras that flips out into a mini tripod. Perfect for "
    "selfies and time-lapses.", compat=["gopro12"], needs=["outdoors", "travel", "content-creation"],
    attrs={"height_cm": 22.7})
acc("bag-peak-sling6", "Peak Design Everyday Sling 6L Black", "camera-bags", "Peak Design", 99.95,
    "A compact sling with padded, adjustable dividers that fits a mirrorless camera, two lenses or a "
    "folded drone.", compat=["@ilc", "dji_mini4"], needs=["photography", "travel"], attrs={"capacity_l": 6})
acc("bag-lowepro-format150", "Lowepro Format Backpack 150 Black", "camera-bags", "Lowepro", 69.95,
    "A roomy camera backpack with a padded bottom compartment and a separate daypack section. Good value "
    "for hobby photographers.", compat=["@ilc", "dji_mini4"], needs=["photography", "outdoors"],
    attrs={"capacity_l": 18})
acc("batt-gopro-enduro", "GoPro Enduro Rechargeable Battery", "camera-batteries", "GoPro", 24.99,
    "GoPro's high-performance battery that lasts longer and works better in the cold. Made for the HERO12 "
    "Black.", compat=["gopro12"], needs=["outdoors", "content-creation"], attrs={"capacity_mah": 1720})
acc("batt-canon-lpe17", "Canon LP-E17 Battery Pack", "camera-batteries", "Canon", 59.00,
    "A genuine Canon spare battery for the EOS R50. Carry one extra for a full day of shooting.",
    compat=["eos_r50"], needs=["photography", "travel"], attrs={"capacity_mah": 1040})
acc("batt-sony-npfz100", "Sony NP-FZ100 Rechargeable Battery", "camera-batteries", "Sony", 78.00,
    "A high-capacity Z-series battery for the Alpha 7 IV, good for around 500 shots per charge.",
    compat=["sony_a7iv"], needs=["photography"], attrs={"capacity_mah": 2280})
acc("batt-sony-npfw50", "Sony NP-FW50 Rechargeable Battery", "camera-batteries", "Sony", 49.99,
    "A spare battery for the ZV-E10. Vloggers usually carry at least one extra.", compat=["sony_zve10"],
    needs=["content-creation"], attrs={"capacity_mah": 1020})
acc("batt-fuji-npw235", "Fujifilm NP-W235 Battery", "camera-batteries", "Fujifilm", 79.00,
    "A high-capacity battery for the X-S20, giving up to 800 shots per charge.", compat=["fuji_xs20"],
    needs=["photography", "travel"], attrs={"capacity_mah": 2200})
acc("gimbal-dji-om6", "DJI Osmo Mobile 6 Smartphone Gimbal", "gimbals", "DJI", 159.00,
    "A foldable three-axis phone gimbal with a built-in extension rod and ActiveTrack subject following. "
    "Turns shaky phone clips into smooth footage.", compat=["@phones"], needs=["content-creation", "travel"],
    attrs={"max_load_g": 290, "battery_hours": 6.4}, aliases=["osmo mobile 6"])
acc("gimbal-dji-rs3mini", "DJI RS 3 Mini Camera Gimbal", "gimbals", "DJI", 369.00,
    "A lightweight three-axis gimbal for mirrorless cameras with native vertical shooting and a 2 kg "
    "payload.", compat=["@ilc"], needs=["content-creation"], attrs={"max_load_g": 2000, "battery_hours": 10})
acc("drone-dji-flymore", "DJI Mini 4 Pro Fly More Kit", "drone-accessories", "DJI", 159.00,
    "Two extra Intelligent Flight Batteries, a two-way charging hub and a shoulder bag for the Mini 4 Pro. "
    "Triples your flight time.", compat=["dji_mini4"], needs=["photography", "outdoors", "travel"],
    attrs={"batteries": 2})

# ------------------------------------------------------------ charging
acc("chg-apple-20w", "Apple 20W USB-C Power Adapter", "chargers", "Apple", 19.00,
    "Apple's compact wall charger for fast charging iPhone and iPad. Use it with a USB-C cable, or a "
    "USB-C to Lightning cable for older iPhones.", compat=["@charge:20"], needs=["fast-charging"],
    attrs={"wattage": 20, "ports": 1, "connector": "USB-C"})
acc("chg-samsung-25w", "Samsung 25W Super Fast Charging Wall Charger", "chargers", "Samsung", 19.99,
    "Samsung's USB-C PD charger for Super Fast Charging on Galaxy phones and tablets. A USB-C cable is "
    "included.", compat=["@charge:25"], needs=["fast-charging"],
    attrs={"wattage": 25, "ports": 1, "connector": "USB-C"})
acc("chg-google-30w", "Google 30W USB-C Charger", "chargers", "Google", 25.00,
    "Google's official USB-C PD charger for the fastest wired charging on Pixel phones. Also tops up "
    "tablets and small laptops.", compat=["@charge:30"], needs=["fast-charging"],
    attrs={"wattage": 30, "ports": 1, "connector": "USB-C"})
acc("chg-anker-735", "Anker 735 Charger (Nano II 65W) 3-Port GaN", "chargers", "Anker", 49.99,
    "A compact GaN charger with two USB-C ports and one USB-A port that can power a laptop, phone and "
    "earbuds at once. Folding prongs make it travel friendly.", compat=["@charge:65"],
    needs=["fast-charging", "travel"], attrs={"wattage": 65, "ports": 3, "connector": "USB-C and USB-A", "gan": True},
    aliases=["anker 735"])
acc("chg-ugreen-100w", "UGREEN Nexode 100W 4-Port GaN Charger", "chargers", "UGREEN", 69.99,
    "A four-port desktop GaN charger with enough power for a gaming laptop plus your phone and tablet. "
    "Replaces a drawer full of bricks.", compat=["@charge:100"], needs=["fast-charging", "work-from-home"],
    attrs={"wattage": 100, "ports": 4, "connector": "USB-C and USB-A", "gan": True})
acc("chg-belkin-3in1", "Belkin BoostCharge Pro 3-in-1 Charging Stand with MagSafe 15W", "chargers", "Belkin",
    149.99, "An elegant stand that fast-charges an iPhone with MagSafe, an Apple Watch and AirPods at the "
    "same time. Perfect for the nightstand.", compat=["@magsafe", "@apple-watch"], needs=["fast-charging"],
    attrs={"wattage": 15, "wireless": True, "magsafe": True})
acc("chg-apple-magsafe", "Apple MagSafe Charger (1 m)", "chargers", "Apple", 39.00,
    "Apple's magnetic wireless charger that snaps onto iPhone and charges at up to 15 W. Needs a 20 W "
    "USB-C adapter for full speed.", compat=["@magsafe"], needs=["fast-charging"],
    attrs={"wattage": 15, "wireless": True, "magsafe": True}, aliases=["magsafe charger"])
acc("chg-anker-313-pad", "Anker 313 Wireless Charger (Pad)", "chargers", "Anker", 15.99,
    "A slim Qi charging pad for phones and earbuds with a non-slip surface. Works through most cases up "
    "to 5 mm thick.", compat=["@qi"], needs=["students"], attrs={"wattage": 10, "wireless": True})
acc("chg-samsung-15w-pad", "Samsung 15W Wireless Charger Pad", "chargers", "Samsung", 39.99,
    "Samsung's Qi wireless pad with fast wireless charging for Galaxy phones and a built-in fan to keep "
    "things cool.", compat=["@qi"], needs=["fast-charging"], attrs={"wattage": 15, "wireless": True}, oos=True)
acc("chg-apple-watch", "Apple Watch Magnetic Fast Charger to USB-C Cable (1 m)", "chargers", "Apple", 29.00,
    "A spare magnetic puck for Apple Watch that supports fast charging on compatible models. Handy to keep "
    "at work or in a travel bag.", compat=["@apple-watch"], needs=["travel", "fitness"],
    attrs={"length_m": 1, "connector": "USB-C"})
acc("pb-anker-737", "Anker 737 Power Bank (PowerCore 24K) 140W", "power-banks", "Anker", 109.99,
    "A 24,000 mAh power bank with 140 W output that can recharge a laptop, tablet and phone. A smart "
    "display shows remaining power and charging speed.", compat=["@charge:140"],
    needs=["travel", "fast-charging", "work-from-home"], attrs={"capacity_mah": 24000, "output_w": 140, "ports": 3},
    aliases=["anker 737"])
acc("pb-anker-622-maggo", "Anker 622 Magnetic Battery (MagGo) 5000mAh", "power-banks", "Anker", 49.99,
    "A slim magnetic battery pack that snaps onto the back of an iPhone with MagSafe, with a fold-out "
    "kickstand. No cables needed.", compat=["@magsafe"], needs=["travel"],
    attrs={"capacity_mah": 5000, "output_w": 7.5, "magsafe": True})
acc("pb-belkin-10k", "Belkin BoostCharge 10K 20W Power Bank", "power-banks", "Belkin", 29.99,
    "A pocketable 10,000 mAh power bank with 20 W USB-C PD fast charging for phones and small tablets.",
    compat=["@charge:20"], needs=["travel", "students"], attrs={"capacity_mah": 10000, "output_w": 20, "ports": 2})
acc("pb-samsung-10k", "Samsung 10,000mAh 25W Battery Pack", "power-banks", "Samsung", 39.99,
    "A slim battery pack with 25 W Super Fast Charging output for Galaxy phones, plus a second port for "
    "earbuds or a watch.", compat=["@charge:25"], needs=["travel", "fast-charging"],
    attrs={"capacity_mah": 10000, "output_w": 25, "ports": 2})
acc("pb-anker-335-20k", "Anker 335 Power Bank (PowerCore 20K)", "power-banks", "Anker", 39.99,
    "A high-capacity 20,000 mAh bank with 20 W USB-C output that charges a phone four to five times. A "
    "great pick for camping trips and festivals.", compat=["@charge:20"], needs=["outdoors", "travel"],
    attrs={"capacity_mah": 20000, "output_w": 20, "ports": 3})
acc("cable-anker-cc-240", "Anker USB-C to USB-C Cable 240W 6ft", "cables", "Anker", 15.99,
    "A braided USB-C cable that carries up to 240 W, enough for any phone, tablet or laptop. Tested for "
    "25,000 bends.", compat=["@usbc"], needs=["fast-charging"], attrs={"length_ft": 6, "max_w": 240, "connector": "USB-C to USB-C"})
acc("cable-apple-cc-240", "Apple 240W USB-C Charge Cable (2 m)", "cables", "Apple", 29.00,
    "Apple's woven 2 m USB-C cable for charging and syncing iPhone, iPad and Mac at up to 240 W.",
    compat=["@usbc"], needs=["fast-charging"], attrs={"length_ft": 6.6, "max_w": 240, "connector": "USB-C to USB-C"})
acc("cable-belkin-cl", "Belkin BoostCharge USB-C to Lightning Cable 1m", "cables", "Belkin", 19.99,
    "An MFi-certified USB-C to Lightning cable for fast charging older iPhones from a USB-C adapter.",
    compat=["@lightning"], needs=["fast-charging"], attrs={"length_ft": 3.3, "connector": "USB-C to Lightning", "mfi": True})
acc("cable-anker-641-cl", "Anker 641 USB-C to Lightning Cable 6ft", "cables", "Anker", 17.99,
    "A silicone-soft, tangle-resistant USB-C to Lightning cable with MFi certification. The extra length "
    "reaches the bed or sofa.", compat=["@lightning"], needs=["fast-charging"],
    attrs={"length_ft": 6, "connector": "USB-C to Lightning", "mfi": True}, oos=True)
acc("cable-ugreen-hdmi21", "UGREEN HDMI 2.1 Cable 8K 6.6ft", "cables", "UGREEN", 14.99,
    "A certified Ultra High Speed HDMI cable for 4K at 120 Hz and VRR on current consoles and gaming "
    "laptops.", compat=["@hdmi-consoles", "@hdmi-laptops"], needs=["gaming"],
    attrs={"length_ft": 6.6, "connector": "HDMI to HDMI"})
acc("cable-cablematters-chdmi", "Cable Matters USB-C to HDMI Cable 4K 6ft", "cables", "Cable Matters", 19.99,
    "A direct USB-C to HDMI cable for connecting a laptop, iPad or Steam Deck to a TV or monitor at 4K "
    "60 Hz.", compat=["@laptops", "@ipads", "steam_deck"], needs=["work-from-home"],
    attrs={"length_ft": 6, "connector": "USB-C to HDMI"})

# ------------------------------------------------------------ gaming accessories
acc("ctrl-dualsense", "Sony DualSense Wireless Controller Midnight Black", "game-controllers", "Sony", 69.99,
    "The PS5 controller with haptic feedback and adaptive triggers that let you feel every surface. Also "
    "pairs with the Steam Deck over Bluetooth.", compat=["ps5", "steam_deck"], needs=["gaming"],
    attrs={"wireless": True, "color": "Midnight Black"}, aliases=["dualsense"])
acc("ctrl-dualsense-edge", "Sony DualSense Edge Wireless Controller", "game-controllers", "Sony", 199.99,
    "Sony's pro controller for PS5 with swappable stick caps, back buttons and custom profiles.",
    compat=["ps5"], needs=["gaming"], attrs={"wireless": True, "back_buttons": True},
    aliases=["dualsense edge"], oos=True)
acc("ctrl-xbox-wireless", "Microsoft Xbox Wireless Controller Carbon Black", "game-controllers", "Microsoft",
    59.99, "The standard Xbox controller with a hybrid D-pad and textured grip. Also works with the Steam "
    "Deck over Bluetooth.", compat=["xbox_x", "steam_deck"], needs=["gaming"],
    attrs={"wireless": True, "color": "Carbon Black"}, aliases=["xbox controller"])
acc("ctrl-switch-pro", "Nintendo Switch Pro Controller", "game-controllers", "Nintendo", 69.99,
    "A full-size controller for the Switch with HD rumble, motion controls and 40 hours of battery.",
    compat=["switch_oled"], needs=["gaming"], attrs={"wireless": True, "battery_hours": 40},
    aliases=["switch pro controller"])
acc("ctrl-joycon-neon", "Nintendo Joy-Con (L)/(R) Neon Red/Neon Blue", "game-controllers", "Nintendo", 79.99,
    "A spare pair of Joy-Con for instant two-player games on the Switch.", compat=["switch_oled"],
    needs=["gaming", "kids"], attrs={"wireless": True, "color": "Neon Red/Neon Blue"}, aliases=["joy-con", "joycons"],
    oos=True)
acc("ctrl-8bitdo-ultimate", "8BitDo Ultimate Bluetooth Controller with Charging Dock", "game-controllers",
    "8BitDo", 69.99, "A comfortable Bluetooth controller with Hall-effect sticks and a handy charging dock. "
    "Works with the Switch and the Steam Deck.", compat=["switch_oled", "steam_deck"], needs=["gaming"],
    attrs={"wireless": True, "hall_effect_sticks": True})
acc("ctrl-powera-switch", "PowerA Enhanced Wired Controller for Nintendo Switch", "game-controllers", "PowerA",
    29.99, "An affordable wired controller with mappable back buttons and a 10 ft cable. Great as an extra "
    "pad for family game nights.", compat=["switch_oled"], needs=["gaming", "kids"], attrs={"wireless": False})
acc("hs-arctis-nova7", "SteelSeries Arctis Nova 7 Wireless Gaming Headset", "gaming-headsets", "SteelSeries",
    179.99, "A lightweight wireless headset with simultaneous 2.4 GHz and Bluetooth audio and 38-hour "
    "battery life. Its USB-C dongle works with PS5, Switch, Steam Deck and PC.",
    compat=["ps5", "switch_oled", "steam_deck", "@laptops"], needs=["gaming", "music"],
    attrs={"wireless": True, "battery_hours": 38, "microphone": True})
acc("hs-hyperx-cloud2w", "HyperX Cloud II Wireless Gaming Headset", "gaming-headsets", "HyperX", 149.99,
    "A comfy memory-foam headset with DTS spatial audio and up to 30 hours of battery. Connects through a "
    "USB-A dongle.", compat=["ps5", "@usba-laptops"], needs=["gaming"],
    attrs={"wireless": True, "battery_hours": 30, "microphone": True})
acc("hs-xbox-wireless", "Microsoft Xbox Wireless Headset", "gaming-headsets", "Microsoft", 99.99,
    "The official Xbox headset that connects directly to the console without a dongle. Rotating earcup "
    "dials adjust volume and chat mix.", compat=["xbox_x"], needs=["gaming"],
    attrs={"wireless": True, "battery_hours": 15, "microphone": True})
acc("hs-pulse3d", "Sony PULSE 3D Wireless Headset", "gaming-headsets", "Sony", 99.99,
    "Sony's headset tuned for 3D Audio on PS5, with dual noise-cancelling microphones.", compat=["ps5"],
    needs=["gaming"], attrs={"wireless": True, "battery_hours": 12, "microphone": True})
acc("case-switch-orzly", "Orzly Carry Case for Nintendo Switch OLED Black", "console-cases", "Orzly", 24.99,
    "A hard-shell travel case with room for the Switch OLED, eight game cards and a charger.",
    compat=["switch_oled"], needs=["travel", "kids", "protection"], attrs={"game_slots": 8})
acc("case-deck-tomtoc", "tomtoc Carrying Case for Steam Deck OLED", "console-cases", "tomtoc", 35.99,
    "A slim, shock-absorbing case with a removable stand and a mesh pocket for the charger.",
    compat=["steam_deck"], needs=["travel", "protection"], attrs={"water_resistant": True})
GAMES = [
    ("game-zelda-totk", "The Legend of Zelda: Tears of the Kingdom (Nintendo Switch)", "Nintendo", 69.99,
     "switch_oled", "Explore the skies and depths of Hyrule in Link's open-world sequel to Breath of the Wild.",
     ["gaming"], "Everyone 10+"),
    ("game-mk8d", "Mario Kart 8 Deluxe (Nintendo Switch)", "Nintendo", 59.99, "switch_oled",
     "The ultimate family kart racer with 48 tracks and split-screen for up to four players.",
     ["gaming", "kids"], "Everyone"),
    ("game-mario-wonder", "Super Mario Bros. Wonder (Nintendo Switch)", "Nintendo", 59.99, "switch_oled",
     "A joyful new 2D Mario adventure with surprise Wonder Flowers and four-player co-op.",
     ["gaming", "kids"], "Everyone"),
    ("game-spiderman2", "Marvel's Spider-Man 2 (PS5)", "Sony", 69.99, "ps5",
     "Swing through New York as Peter Parker and Miles Morales in this fast, cinematic PS5 exclusive.",
     ["gaming"], "Teen"),
    ("game-fc24", "EA Sports FC 24 (PS5)", "EA", 69.99, "ps5",
     "The latest football sim with over 19,000 licensed players and HyperMotionV animation.",
     ["gaming"], "Everyone"),
    ("game-forza-h5", "Forza Horizon 5 (Xbox Series X|S)", "Microsoft", 59.99, "xbox_x",
     "An open-world racing festival across Mexico with hundreds of cars and seasonal events.",
     ["gaming"], "Everyone"),
    ("game-hogwarts", "Hogwarts Legacy (PS5)", "Warner Bros. Games", 69.99, "ps5",
     "An open-world action RPG set in the 1800s wizarding world, with spells, potions and beasts to tame.",
     ["gaming"], "Teen"),
]
for _k, _t, _b, _p, _d, _desc, _needs, _esrb in GAMES:
    acc(_k, _t, "video-games", _b, _p, _desc, compat=[_d], needs=_needs,
        attrs={"platform": _device_short(_d), "esrb": _esrb, "format": "Physical"})

# ------------------------------------------------------------ audio (universal Bluetooth, no compat triples)
BT = {"connectivity": "Bluetooth", "wireless": True}
acc("hp-sony-xm5", "Sony WH-1000XM5 Wireless Noise Cancelling Headphones Black", "headphones", "Sony", 399.99,
    "Industry-leading noise cancelling with eight microphones, rich sound and 30 hours of battery. Light "
    "and comfortable for long flights.", needs=["travel", "music", "work-from-home"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=30, weight_g=250), aliases=["wh-1000xm5"], series="sony-1000x")
acc("hp-sony-xm4", "Sony WH-1000XM4 Wireless Noise Cancelling Headphones Black", "headphones", "Sony", 279.99,
    "The previous-generation Sony flagship with excellent noise cancelling and foldable earcups. A great "
    "value now that the XM5 is out.", needs=["travel", "music"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=30, weight_g=254), aliases=["wh-1000xm4"], series="sony-1000x")
acc("hp-bose-qcu", "Bose QuietComfort Ultra Headphones Black", "headphones", "Bose", 429.00,
    "Bose's best noise cancelling with Immersive Audio that makes music feel like it's all around you. "
    "Plush cushions for all-day comfort.", needs=["travel", "music", "work-from-home"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=24, weight_g=250), aliases=["qc ultra headphones"])
acc("hp-airpods-max", "Apple AirPods Max Space Gray", "headphones", "Apple", 549.00,
    "Apple's over-ear headphones with computational audio, Active Noise Cancellation and Spatial Audio. "
    "Switches automatically between your Apple devices.", needs=["music", "travel"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=20, weight_g=385), aliases=["airpods max"], series="airpods")
acc("hp-sennheiser-m4", "Sennheiser Momentum 4 Wireless Headphones Black", "headphones", "Sennheiser", 349.95,
    "Audiophile-grade sound with adaptive noise cancelling and a class-leading 60 hours of battery.",
    needs=["music", "travel"], attrs=dict(BT, noise_cancelling=True, battery_hours=60, weight_g=293),
    aliases=["momentum 4"])
acc("hp-beats-studio-pro", "Beats Studio Pro Wireless Headphones Black", "headphones", "Beats", 349.99,
    "Punchy, personalised sound with noise cancelling and one-touch pairing for both iPhone and Android. "
    "Also plays lossless audio over USB-C.", needs=["music", "travel"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=40, weight_g=260), aliases=["beats studio pro"])
acc("hp-jbl-760nc", "JBL Tune 760NC Wireless Headphones Black", "headphones", "JBL", 99.95,
    "Affordable foldable headphones with active noise cancelling, JBL Pure Bass and 35 hours of playtime.",
    needs=["students", "music", "travel"], attrs=dict(BT, noise_cancelling=True, battery_hours=35, weight_g=220))
acc("hp-at-m50xbt2", "Audio-Technica ATH-M50xBT2 Wireless Headphones", "headphones", "Audio-Technica", 199.00,
    "The studio-favourite M50x sound in a wireless design with LDAC and 50 hours of battery. Detailed, "
    "honest audio for critical listening.", needs=["music", "content-creation"],
    attrs=dict(BT, noise_cancelling=False, battery_hours=50, weight_g=307))
acc("hp-shokz-openrun-pro", "Shokz OpenRun Pro Bone Conduction Headphones Black", "headphones", "Shokz", 179.95,
    "Open-ear bone conduction headphones that keep you aware of traffic while you run or cycle. Sweat "
    "resistant with 10 hours of battery.", needs=["fitness", "outdoors"],
    attrs=dict(BT, noise_cancelling=False, battery_hours=10, weight_g=29, water_resistance="IP55"))
acc("hp-jbl-jr310bt", "JBL JR310BT Kids Wireless Headphones Blue", "headphones", "JBL", 49.95,
    "Colourful, lightweight kids' headphones with volume limited to a safe 85 dB and 30 hours of battery. "
    "Includes stickers to personalise them.", needs=["kids"],
    attrs=dict(BT, noise_cancelling=False, battery_hours=30, volume_limited=True))
acc("eb-airpods-pro2", "Apple AirPods Pro (2nd generation) with MagSafe Case (USB-C)", "earbuds", "Apple", 249.00,
    "Apple's best earbuds with up to twice the noise cancelling of the original, Adaptive Audio and "
    "Personalized Spatial Audio. The case charges over USB-C or MagSafe.", needs=["music", "travel", "fitness"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=6, water_resistance="IP54"),
    aliases=["airpods pro 2", "airpods pro"], series="airpods")
acc("eb-airpods-3", "Apple AirPods (3rd generation) with Lightning Charging Case", "earbuds", "Apple", 169.00,
    "Open-fit AirPods with Spatial Audio, sweat resistance and up to 30 hours with the case.",
    needs=["music"], attrs=dict(BT, noise_cancelling=False, battery_hours=6, water_resistance="IPX4"),
    aliases=["airpods 3", "airpods"], series="airpods")
acc("eb-galaxy-buds2-pro", "Samsung Galaxy Buds2 Pro Graphite", "earbuds", "Samsung", 229.99,
    "Compact earbuds with intelligent ANC, 24-bit Hi-Fi sound on Galaxy phones and 360 Audio.",
    needs=["music", "travel"], attrs=dict(BT, noise_cancelling=True, battery_hours=5, water_resistance="IPX7"),
    aliases=["galaxy buds2 pro", "galaxy buds 2 pro"], series="galaxy-buds")
acc("eb-galaxy-buds-fe", "Samsung Galaxy Buds FE Graphite", "earbuds", "Samsung", 99.99,
    "Affordable Galaxy earbuds with active noise cancelling and a secure wing-tip fit for workouts.",
    needs=["fitness", "students", "music"], attrs=dict(BT, noise_cancelling=True, battery_hours=6, water_resistance="IPX2"),
    aliases=["galaxy buds fe"], series="galaxy-buds")
acc("eb-pixel-buds-pro", "Google Pixel Buds Pro Charcoal", "earbuds", "Google", 199.99,
    "Google's noise-cancelling earbuds with a custom 6-core audio chip and hands-free Google Assistant.",
    needs=["music", "travel"], attrs=dict(BT, noise_cancelling=True, battery_hours=7, water_resistance="IPX4"),
    aliases=["pixel buds pro"], series="pixel-buds")
acc("eb-pixel-buds-a", "Google Pixel Buds A-Series White", "earbuds", "Google", 99.00,
    "Lightweight Pixel earbuds with a stabilising arc and Adaptive Sound that adjusts to your surroundings.",
    needs=["students", "music"], attrs=dict(BT, noise_cancelling=False, battery_hours=5, water_resistance="IPX4"),
    aliases=["pixel buds a-series"], series="pixel-buds", oos=True)
acc("eb-sony-wf1000xm5", "Sony WF-1000XM5 Wireless Noise Cancelling Earbuds Black", "earbuds", "Sony", 299.99,
    "Sony's smallest flagship earbuds with best-in-class noise cancelling and Hi-Res Audio Wireless. Crisp "
    "call quality thanks to bone-conduction sensors.", needs=["music", "travel", "work-from-home"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=8, water_resistance="IPX4"), aliases=["wf-1000xm5"],
    series="sony-1000x")
acc("eb-jabra-elite8", "Jabra Elite 8 Active Sport Earbuds Black", "earbuds", "Jabra", 199.99,
    "The world's toughest earbuds, with military-grade durability, IP68 dust and water protection and "
    "ShakeGrip that stays put during intense workouts.", needs=["fitness", "outdoors"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=8, water_resistance="IP68"))
acc("eb-beats-fit-pro", "Beats Fit Pro True Wireless Earbuds Black", "earbuds", "Beats", 199.99,
    "Secure-fit wingtip earbuds with active noise cancelling and spatial audio. One-touch pairing on "
    "iPhone and Android.", needs=["fitness", "music"],
    attrs=dict(BT, noise_cancelling=True, battery_hours=6, water_resistance="IPX4"), aliases=["beats fit pro"])
acc("eb-soundcore-liberty4nc", "Soundcore Liberty 4 NC by Anker", "earbuds", "Anker", 99.99,
    "Strong adaptive noise cancelling and 10-hour battery at a budget price. A popular pick for commuters.",
    needs=["travel", "students", "music"], attrs=dict(BT, noise_cancelling=True, battery_hours=10, water_resistance="IPX4"))
acc("eb-soundcore-sportx10", "Soundcore Sport X10 Workout Earbuds by Anker", "earbuds", "Anker", 79.99,
    "Rotating ear hooks keep these sweatproof IPX7 earbuds in place through sprints and burpees. Deep bass "
    "and 8 hours per charge.", needs=["fitness"],
    attrs=dict(BT, noise_cancelling=False, battery_hours=8, water_resistance="IPX7"))
acc("eb-jbl-endurance-peak3", "JBL Endurance Peak 3 Sport Earbuds Black", "earbuds", "JBL", 99.95,
    "Dustproof and waterproof IP68 sport earbuds with flexible ear hooks and up to 50 hours with the case.",
    needs=["fitness", "outdoors"], attrs=dict(BT, noise_cancelling=False, battery_hours=10, water_resistance="IP68"))
acc("eb-bose-qcu", "Bose QuietComfort Ultra Earbuds Black", "earbuds", "Bose", 299.00,
    "Bose's most effective noise-cancelling earbuds with Immersive Audio and CustomTune fit.",
    needs=["travel", "music"], attrs=dict(BT, noise_cancelling=True, battery_hours=6, water_resistance="IPX4"),
    aliases=["qc ultra earbuds"], oos=True)
acc("eb-jbl-vibe-beam", "JBL Vibe Beam True Wireless Earbuds Black", "earbuds", "JBL", 49.95,
    "Budget-friendly earbuds with JBL Deep Bass sound, a stick design and 32 hours of total playtime.",
    needs=["students", "kids", "music"], attrs=dict(BT, noise_cancelling=False, battery_hours=8, water_resistance="IP54"))
acc("spk-jbl-flip6", "JBL Flip 6 Portable Bluetooth Speaker Blue", "speakers", "JBL", 129.95,
    "A bold, waterproof IP67 speaker with a two-way driver system and 12 hours of playtime. Throw it in a "
    "bag for the beach or the park.", needs=["outdoors", "music"],
    attrs=dict(BT, waterproof="IP67", battery_hours=12, weight_g=550), aliases=["jbl flip 6", "flip 6"])
acc("spk-jbl-charge5", "JBL Charge 5 Portable Bluetooth Speaker Black", "speakers", "JBL", 179.95,
    "Powerful JBL Pro Sound with a built-in power bank to charge your phone and 20 hours of playtime. "
    "IP67 waterproof and dustproof.", needs=["outdoors", "music", "travel"],
    attrs=dict(BT, waterproof="IP67", battery_hours=20, weight_g=960), aliases=["jbl charge 5"])
acc("spk-bose-soundlink-flex", "Bose SoundLink Flex Bluetooth Speaker Black", "speakers", "Bose", 149.00,
    "A rugged, floating speaker with clear, deep sound for its size and 12 hours of battery. Clip it to a "
    "backpack with the utility loop.", needs=["outdoors", "music"],
    attrs=dict(BT, waterproof="IP67", battery_hours=12, weight_g=600), aliases=["soundlink flex"])
acc("spk-sonos-era100", "Sonos Era 100 Smart Speaker Black", "speakers", "Sonos", 249.00,
    "A compact home speaker with stereo sound, Wi-Fi and Bluetooth streaming and built-in voice control. "
    "Pair two for a true stereo setup.", needs=["music", "smart-home"],
    attrs={"connectivity": "Wi-Fi and Bluetooth", "wireless": True, "portable": False, "voice_assistant": True},
    aliases=["sonos era 100", "era 100"])
acc("spk-ue-wonderboom3", "Ultimate Ears WONDERBOOM 3 Portable Speaker Active Black", "speakers",
    "Ultimate Ears", 99.99, "A tiny, tough speaker that floats, survives drops and plays for 14 hours. "
    "Outdoor Boost mode makes it louder in the open air.", needs=["outdoors", "kids"],
    attrs=dict(BT, waterproof="IP67", battery_hours=14, weight_g=420), aliases=["wonderboom 3"])
acc("spk-soundcore-motionplus", "Soundcore Motion+ Bluetooth Speaker by Anker", "speakers", "Anker", 99.99,
    "Hi-Res audio with crisp highs and punchy bass at a budget price, plus 12 hours of playtime.",
    needs=["music", "students"], attrs=dict(BT, waterproof="IPX7", battery_hours=12, weight_g=1050))
acc("spk-marshall-emberton2", "Marshall Emberton II Portable Speaker Black and Brass", "speakers", "Marshall",
    169.99, "Iconic Marshall looks with 360-degree True Stereophonic sound and more than 30 hours of "
    "playtime.", needs=["music", "outdoors"],
    attrs=dict(BT, waterproof="IP67", battery_hours=30, weight_g=700), aliases=["emberton ii"], oos=True)
acc("spk-jbl-go3", "JBL Go 3 Portable Speaker Blue", "speakers", "JBL", 39.95,
    "A pocket-size waterproof speaker with surprisingly big sound and 5 hours of playtime. A great "
    "stocking filler.", needs=["kids", "students", "outdoors"],
    attrs=dict(BT, waterproof="IP67", battery_hours=5, weight_g=209), aliases=["jbl go 3"])

# ------------------------------------------------------------ smart home and networking
acc("sh-nest-hub2", "Google Nest Hub (2nd Gen) Chalk", "smart-home", "Google", 99.99,
    "A 7-inch smart display with Google Assistant for controlling lights, viewing your calendar and "
    "tracking sleep with radar.", needs=["smart-home", "kids"],
    attrs={"voice_assistant": "Google Assistant", "screen_in": 7}, aliases=["nest hub"])
acc("sh-echo-dot5", "Amazon Echo Dot (5th Gen) Charcoal", "smart-home", "Amazon", 49.99,
    "A compact Alexa smart speaker with clearer vocals, a temperature sensor and smart home control.",
    needs=["smart-home", "music"], attrs={"voice_assistant": "Alexa"}, aliases=["echo dot"])
acc("sh-echo-show8", "Amazon Echo Show 8 (3rd Gen) Charcoal", "smart-home", "Amazon", 149.99,
    "An 8-inch Alexa smart display with spatial audio, a built-in smart home hub and a 13 MP camera for "
    "video calls.", needs=["smart-home", "kids"], attrs={"voice_assistant": "Alexa", "screen_in": 8},
    aliases=["echo show 8"])
acc("sh-hue-starter", "Philips Hue White and Color Ambiance Starter Kit (3 A19 Bulbs + Bridge)", "smart-home",
    "Philips Hue", 179.99, "Three colour smart bulbs and the Hue Bridge, controllable by app, voice or "
    "schedule. Sync lights with your TV, music and games.", needs=["smart-home", "gaming"],
    attrs={"bulbs": 3, "works_with": ["Alexa", "Google Assistant", "Apple Home"]}, aliases=["hue starter kit"])
acc("sh-ring-doorbell2", "Ring Video Doorbell (2nd Gen)", "smart-home", "Ring", 99.99,
    "A 1080p HD video doorbell with two-way talk and motion alerts on your phone. Works on battery or "
    "existing doorbell wiring.", needs=["smart-home"], attrs={"resolution": "1080p", "battery_powered": True},
    aliases=["ring doorbell"])
acc("sh-kasa-plug4", "TP-Link Kasa Smart Plug Mini 4-Pack", "smart-home", "TP-Link", 29.99,
    "Four compact Wi-Fi smart plugs for scheduling lamps and appliances. No hub required.",
    needs=["smart-home"], attrs={"pack": 4, "works_with": ["Alexa", "Google Assistant"]})
acc("sh-nest-cam", "Google Nest Cam (Indoor, Wired) Snow", "smart-home", "Google", 99.99,
    "An indoor security camera with HDR video, night vision and intelligent alerts for people, pets and "
    "packages.", needs=["smart-home", "kids"], attrs={"resolution": "1080p", "night_vision": True}, oos=True)
acc("rt-tplink-ax55", "TP-Link Archer AX55 AX3000 Wi-Fi 6 Router", "routers", "TP-Link", 99.99,
    "A dual-band Wi-Fi 6 router that handles dozens of devices with low latency. A great upgrade for "
    "apartments and small homes.", needs=["work-from-home", "gaming"],
    attrs={"wifi_standard": "Wi-Fi 6", "speed_class": "AX3000", "mesh": False})
acc("rt-tplink-deco-x55", "TP-Link Deco X55 AX3000 Whole Home Mesh Wi-Fi 6 System (3-Pack)", "routers",
    "TP-Link", 279.99, "A three-unit mesh system that blankets up to 6,500 sq ft in fast Wi-Fi 6. No more "
    "dead zones in the home office.", needs=["work-from-home", "smart-home"],
    attrs={"wifi_standard": "Wi-Fi 6", "speed_class": "AX3000", "mesh": True, "units": 3})
acc("rt-netgear-rax50", "NETGEAR Nighthawk RAX50 AX5400 Wi-Fi 6 Router", "routers", "NETGEAR", 229.99,
    "A fast Wi-Fi 6 router with six streams and a 1.8 GHz processor for 4K streaming and large homes.",
    needs=["gaming", "work-from-home"], attrs={"wifi_standard": "Wi-Fi 6", "speed_class": "AX5400", "mesh": False})
acc("rt-asus-rtax86u-pro", "ASUS RT-AX86U Pro AX5700 Gaming Router", "routers", "ASUS", 279.99,
    "A gaming router with a dedicated gaming port, mobile game mode and 2.5 Gbps WAN. Prioritises your "
    "console traffic for lower ping.", needs=["gaming"],
    attrs={"wifi_standard": "Wi-Fi 6", "speed_class": "AX5700", "mesh": False})
acc("rt-eero-6plus", "eero 6+ Mesh Wi-Fi System (3-Pack)", "routers", "eero", 299.99,
    "A simple mesh Wi-Fi 6 system with gigabit speeds that sets up in minutes from an app. Also works as a "
    "Zigbee smart home hub.", needs=["smart-home", "work-from-home"],
    attrs={"wifi_standard": "Wi-Fi 6", "speed_class": "AX3000", "mesh": True, "units": 3})

# successor pairs (newer device key, older device key)
SUCCESSORS = [
    ("pixel8", "pixel7"),
    ("galaxy_s24", "galaxy_s23"),
    ("iphone15", "iphone14"),
    ("fr265", "fr255"),
    ("hp-sony-xm5", "hp-sony-xm4"),
]

# ============================================================ 3. answer templates
#
# Slots: any SHOP key, plus customer_name / order_id / item_title which always
# carry a default. customer_name is only used after "Hi"/"Hello" so the default
# "there" reads naturally; item_title is filled with a bare catalogue title and
# written where both a title and "the item" read well.
NAME = {"customer_name": "there"}
ORDER = {"order_id": "your order"}
ITEM = {"item_title": "the item"}

TEMPLATES = [
    # (id, intent, text, slot defaults)
    ("greeting_welcome", "greeting",
     "Hi {customer_name}, welcome to {name} support! I can help with orders, returns and warranties, or "
     "help you find the right gear. What can I do for you today?", NAME),
    ("thanks_reply", "thanks",
     "You're very welcome! If anything else comes up, we're here {hours} at {support_phone} or "
     "{support_email}. Have a great day!", {}),
    ("thanks_reply_short", "thanks",
     "Glad I could help! Don't hesitate to reach out if you need anything else.", {}),
    ("track_order_ask_id", "track_order",
     "Hi {customer_name}, I'd be glad to check on that. Could you share your order number? It starts with "
     "#VW and you'll find it in your order confirmation email.", NAME),
    ("track_order_status", "track_order",
     "Thanks! You can follow {order_id} in real time under My Account > Orders on {website}, and the "
     "carrier's tracking link is also in your shipping confirmation email. Standard orders arrive "
     "{standard_shipping_days} after dispatch. If the tracking hasn't updated in 48 hours, let me know and "
     "I'll open a trace with the carrier.", ORDER),
    ("track_order_delayed", "track_order",
     "I'm sorry that {order_id} is running late. Most carrier delays clear within a day or two, and the "
     "latest scan is always shown under My Account > Orders on {website}. If it hasn't moved in 48 hours, "
     "we'll open a trace and, if the parcel is lost, send a replacement or a full refund at no cost to you.",
     ORDER),
    ("cancel_order_steps", "cancel_order",
     "Hi {customer_name}, you can cancel {order_id} as long as it hasn't shipped yet: go to My Account > "
     "Orders on {website}, open the order and choose Cancel order. The refund goes back to your original "
     "payment method within {refund_days}. If the button is greyed out, the order is already packed and you "
     "can return it once it arrives instead.", dict(NAME, **ORDER)),
    ("cancel_order_shipped", "cancel_order",
     "Once an order has shipped it can no longer be cancelled, but it's still easy to get your money back. "
     "Simply refuse the delivery or return {order_id} within {return_window_days} days of arrival, and "
     "we'll refund you in full within {refund_days} after it reaches our warehouse.", ORDER),
    ("change_order_items", "change_order",
     "We can change items, colours or quantities on {order_id} until it's packed, which usually happens "
     "within a few hours of ordering. The quickest way is to cancel it under My Account > Orders on "
     "{website} and place a new order with the right items. If it's already packed, call us at "
     "{support_phone} and we'll see what we can do.", ORDER),
    ("change_shipping_address", "change_shipping_address",
     "You can update the delivery address for {order_id} under My Account > Orders on {website} until the "
     "parcel ships. After that, use the carrier's link in your shipping email to redirect it to a new "
     "address or a pickup point.", ORDER),
    ("shipping_options_overview", "shipping_options",
     "We offer standard shipping ({standard_shipping_days}), which is free on orders over "
     "${free_shipping_threshold}, and express shipping ({express_shipping_days}) for "
     "${express_shipping_price}. You choose the option at checkout, and orders placed before 2pm ET on a "
     "business day leave our warehouse the same day.", {}),
    ("shipping_free_threshold", "shipping_options",
     "Yes! Standard shipping is free on every order over ${free_shipping_threshold} and takes "
     "{standard_shipping_days}. Need it sooner? Express delivery in {express_shipping_days} is "
     "${express_shipping_price}.", {}),
    ("delivery_time_estimate", "delivery_time",
     "Standard delivery takes {standard_shipping_days} and express takes {express_shipping_days} from the "
     "day your order ships. Orders placed before 2pm ET on a business day usually ship the same day, and "
     "you'll get a tracking link by email as soon as they do.", {}),
    ("international_shipping_info", "international_shipping",
     "At the moment {name} only ships to addresses in the United States, including Alaska, Hawaii and "
     "APO/FPO addresses. We're working on international delivery and will announce it in our newsletter as "
     "soon as it's available.", {}),
    ("return_item_steps", "return_item",
     "You can return {item_title} within {return_window_days} days of delivery. Start the return under My "
     "Account > Orders on {website}, print the prepaid label and drop the parcel at any carrier location. "
     "Once it arrives at our warehouse, your refund is issued within {refund_days}.", ITEM),
    ("return_item_opened", "return_item",
     "Opened and gently used items can still be returned within {return_window_days} days, as long as "
     "they're complete with all accessories and packaging. Please reset any device and sign out of your "
     "accounts before sending it back. Refunds are issued within {refund_days} after the item reaches us.", {}),
    ("exchange_item_steps", "exchange_item",
     "Exchanges are free within {return_window_days} days of delivery. Start a return for {item_title} "
     "under My Account > Orders on {website}, choose Exchange and pick the colour, size or model you want. "
     "We ship the replacement as soon as the carrier scans your return, so you won't be without it for long.",
     ITEM),
    ("refund_status_check", "refund_status",
     "Refunds are issued within {refund_days} after your return is checked in at our warehouse, and you'll "
     "get an email the moment it's processed. You can see the status of {order_id} under My Account > "
     "Orders on {website}. Depending on your bank, it can take a few extra days to appear on your statement.",
     ORDER),
    ("refund_policy_overview", "refund_policy",
     "Most items can be returned for a full refund within {return_window_days} days of delivery, as long as "
     "they're complete and in good condition. Refunds go back to your original payment method within "
     "{refund_days} of us receiving the item. Original shipping costs are refunded too if the item was "
     "faulty or we made a mistake.", {}),
    ("damaged_item_report", "damaged_item",
     "Hi {customer_name}, I'm really sorry that {item_title} arrived damaged. Please reply with a photo of "
     "the item and its packaging, and we'll send a free replacement right away or issue a full refund, "
     "whichever you prefer. You won't pay anything for return shipping.", dict(NAME, **ITEM)),
    ("missing_item_report", "missing_item",
     "I'm sorry your delivery isn't complete. Larger orders sometimes ship in separate parcels, so please "
     "check the tracking for {order_id} under My Account > Orders on {website} first. If everything shows "
     "as delivered and something is still missing, tell us within 7 days and we'll send it again or refund "
     "it in full.", ORDER),
    ("warranty_info_standard", "warranty_info",
     "Every product we sell comes with a {warranty_years}-year {name} warranty that covers manufacturing "
     "defects, on top of any manufacturer warranty. If something stops working as it should, start a claim "
     "under My Account > Orders on {website} and we'll repair or replace it.", {}),
    ("warranty_info_extended", "warranty_info",
     "Yes, you can add our extended protection plan at checkout or within 30 days of purchase. It extends "
     "cover to {extended_warranty_years} years in total and adds accidental damage cover for phones, "
     "tablets and laptops. The full plan terms are on {website}.", {}),
    ("warranty_claim_steps", "warranty_claim",
     "Sorry to hear that {item_title} is giving you trouble. Products are covered for {warranty_years} "
     "years against defects, so start a warranty claim under My Account > Orders on {website} and describe "
     "the problem. We'll email a prepaid label, and repairs or replacements usually ship back within 10 "
     "business days.", ITEM),
    ("payment_methods_list", "payment_methods",
     "We accept {payment_methods}. You choose your payment method at checkout, and your card is only "
     "charged once your order ships.", {}),
    ("payment_issue_declined", "payment_issue",
     "Sorry about the trouble at checkout. Declines usually happen when the billing address doesn't match "
     "the one your bank has on file, or when the bank flags an unusual purchase, so it's worth checking the "
     "address and giving your bank a quick call. You can also try another method: we accept "
     "{payment_methods}.", {}),
    ("payment_issue_double_charge", "payment_issue",
     "I understand how worrying a double charge is. Often the second charge is a temporary authorization "
     "hold that disappears within 3-5 business days, but I'll check {order_id} for you. If both charges "
     "were actually captured, we'll refund the duplicate right away and you'll see it within {refund_days}.",
     ORDER),
    ("invoice_request_download", "invoice_request",
     "You can download a PDF invoice for {order_id} at any time under My Account > Orders on {website}: open "
     "the order and click Download invoice. If you need a company name or tax ID on it, email "
     "{support_email} with the order number and we'll reissue it within one business day.", ORDER),
    ("create_account_steps", "create_account",
     "Creating an account takes a minute: go to {website}, click Sign in > Create account and enter your "
     "name, email address and a password. If you've ordered as a guest before, use the same email address "
     "and your past orders will be linked automatically.", {}),
    ("delete_account_steps", "delete_account",
     "I'm sorry to see you go. You can delete your account under My Account > Privacy on {website}, or "
     "email {support_email} and we'll do it for you within 30 days. We keep order and invoice records as "
     "the law requires, but your profile, saved addresses and marketing preferences are erased.", {}),
    ("reset_password_steps", "reset_password",
     "Hi {customer_name}, no problem. Click Sign in > Forgot password on {website} and enter the email "
     "address on your account; the reset link arrives within a few minutes and is valid for 24 hours. If it "
     "doesn't show up, check your spam folder or call us at {support_phone}.", NAME),
    ("edit_account_details", "edit_account",
     "You can update your name, email address, phone number and saved addresses under My Account > Profile "
     "on {website}. Changes take effect immediately, and we'll send a confirmation whenever your login "
     "email changes.", {}),
    ("newsletter_unsubscribe_steps", "newsletter_unsubscribe",
     "Sorry for the flood of emails! Click Unsubscribe at the bottom of any newsletter, or turn off "
     "marketing emails under My Account > Preferences on {website}. It can take up to 48 hours to reach "
     "every mailing list, and you'll still get order and shipping updates.", {}),
    ("newsletter_subscribe_steps", "newsletter_subscribe",
     "Great to hear! Enter your email address at the bottom of any page on {website}, or tick Deals and new "
     "arrivals under My Account > Preferences. Subscribers get early access to sales and restock alerts for "
     "sold-out products.", {}),
    ("availability_in_stock", "product_availability",
     "Good news: {item_title} is in stock right now and ships within one business day. Orders over "
     "${free_shipping_threshold} ship free, and express delivery takes {express_shipping_days}.", ITEM),
    ("availability_out_of_stock", "product_availability",
     "Unfortunately {item_title} is out of stock at the moment. Click Notify me on the product page at "
     "{website} and we'll email you as soon as it's back.", ITEM),
    ("compatibility_yes", "product_compatibility",
     "Yes, {item_title} is on the compatibility list for that device, so it will fit and work as intended. "
     "And if it doesn't suit you for any reason, you can return it within {return_window_days} days.", ITEM),
    ("compatibility_no", "product_compatibility",
     "I'm afraid {item_title} isn't compatible with that device, so I wouldn't recommend it. The Compatible "
     "with section on every product page at {website} lists exactly which devices an accessory fits.", ITEM),
    ("price_match_policy", "price_match",
     "We match the price of identical, in-stock items sold by major US retailers, both before you buy and "
     "for {price_match_days} days after purchase. Just send the competitor's link and your order number to "
     "{support_email} and we'll refund the difference. Marketplace sellers and limited-time flash deals "
     "aren't included.", {}),
    ("store_hours_info", "store_hours",
     "Our customer service team is available {hours}. You can reach us by chat here, by phone at "
     "{support_phone} or by email at {support_email}, and the online shop at {website} is open around the "
     "clock.", {}),
    ("contact_human_handoff", "contact_human",
     "Of course. I'm connecting you with one of our support specialists now; the average wait is under five "
     "minutes during opening hours ({hours}). If you'd rather not wait, you can call us at {support_phone}.",
     {}),
    ("contact_human_phone", "contact_human",
     "You can call us at {support_phone}, {hours}. If that's not convenient, email {support_email} and a "
     "member of the team will get back to you within one business day.", {}),
    ("complaint_apology", "complaint",
     "I'm truly sorry about this experience; it's not the standard we hold ourselves to. I've logged your "
     "feedback with our customer care team, and a specialist will contact you within one business day to put "
     "things right. If you'd like to speak to someone sooner, call {support_phone}.", {}),
    ("complaint_escalate", "complaint",
     "Thank you for taking the time to tell us. You can file a formal complaint by emailing {support_email} "
     "with the details and any order number, and a team lead will respond within two business days. I've "
     "also noted it on your account so nobody asks you to repeat yourself.", {}),
    ("gift_card_buy", "gift_card",
     "Yes! {name} e-gift cards from $10 to $500 are available on {website} and are delivered by email, "
     "either right away or on a date you choose. They never expire and can be used on anything in the shop.",
     {}),
    ("gift_card_balance", "gift_card",
     "You can check your gift card balance on {website} under Gift cards > Check balance, or at checkout "
     "when you enter the card number. A gift card can be combined with any payment method we accept: "
     "{payment_methods}.", {}),
    ("student_discount_info", "student_discount",
     "Students get 10% off laptops, tablets and headphones at {name}. Verify your student status once under "
     "My Account > Student on {website} with your school email, and the discount is applied automatically at "
     "checkout for 12 months.", {}),
    ("trade_in_info", "trade_in",
     "Yes, we accept trade-ins of phones, tablets, laptops, smartwatches and consoles in working condition. "
     "Get an instant quote under Trade-in on {website} and send the device with the free prepaid label; once "
     "it's checked, you'll receive the value as a {name} gift card within {refund_days}.", {}),
    ("review_steps", "review",
     "We'd love to hear what you think! Open the product page on {website}, scroll to Reviews and click "
     "Write a review, or use the link in the email we send a week after delivery. Verified buyers get a "
     "badge next to their review.", {}),
    ("add_to_cart_confirm", "add_to_cart",
     "Great choice! I've added {item_title} to your cart. Orders over ${free_shipping_threshold} ship "
     "free, and you have {return_window_days} days to return it if it isn't right.", ITEM),
    ("add_to_cart_confirm_express", "add_to_cart",
     "Done: {item_title} is in your cart and ships within one business day. If you need it quickly, express "
     "delivery ({express_shipping_days}) is available at checkout for ${express_shipping_price}.", ITEM),
]

REQUIRED_INTENTS = [
    "track_order", "cancel_order", "change_order", "change_shipping_address", "shipping_options",
    "delivery_time", "international_shipping", "return_item", "exchange_item", "refund_status",
    "refund_policy", "damaged_item", "missing_item", "warranty_info", "warranty_claim", "payment_methods",
    "payment_issue", "invoice_request", "create_account", "delete_account", "reset_password", "edit_account",
    "newsletter_unsubscribe", "product_availability", "product_compatibility", "price_match", "store_hours",
    "contact_human", "complaint", "gift_card", "student_discount", "trade_in",
]

# ============================================================ 4. users and phrasings

USER_NAMES = [
    "Maya R.", "Liam K.", "Sofia M.", "Noah T.", "Aisha B.", "Ethan W.", "Priya S.", "Lucas G.",
    "Hannah L.", "Mateo D.", "Chloe P.", "Omar H.", "Zoe F.", "Daniel O.", "Grace C.", "Kenji Y.",
    "Isabella N.", "Samuel A.", "Fatima Z.", "Jack E.", "Emily V.", "Ravi J.", "Ava Q.", "Marcus I.",
    "Lena U.", "Diego X.", "Nora B.", "Tyler M.", "Mei L.", "Caleb R.", "Amara O.", "Owen S.",
    "Julia K.", "Andre P.", "Riya D.", "Ben C.", "Sara H.", "Felix N.", "Leah W.", "Hugo T.",
    "Yara G.", "Ryan F.", "Elena V.", "Jamal A.", "Ines M.", "Victor L.", "Naomi E.", "Sam J.",
    "Olivia Z.", "Arjun K.", "Clara S.", "Theo B.", "Mia D.", "Tariq R.", "Ruby P.", "Finn O.",
    "Layla C.", "Max H.", "Camila T.", "Isaac W.", "Eva N.", "Jonah G.", "Alice F.", "Kai M.",
]

CITIES = [
    "Austin", "Seattle", "Chicago", "Denver", "Boston", "Atlanta", "Portland", "San Diego", "Phoenix",
    "Minneapolis", "Nashville", "Philadelphia", "Miami", "Columbus", "Raleigh", "Salt Lake City",
    "San Jose", "Pittsburgh", "Sacramento", "Baltimore", "Madison", "Tampa", "Richmond", "Boise",
    "New York", "Los Angeles", "Houston", "Detroit", "Kansas City", "Albuquerque",
]

# Each segment: phone pool, extra device groups (pool, probability), base interests,
# optional interests, budget range (USD, typical max spend per item) and brands it tends to like.
# "watch" in a pool means "a watch that works with the user's phone".
SEGMENTS = {
    "student": dict(phones=["pixel7a", "galaxy_a54", "iphone14", "iphone15", "pixel8"],
                    groups=[(["ipad10", "macbook_air", "ideapad5", "zenbook14", "tab_p12", "ipad_air"], 1.0),
                            (["kindle_pw", "switch_oled"], 0.3)],
                    interests=["students"], optional=["music", "gaming", "travel", "fitness"],
                    budget=(100, 400), brands=["Anker", "JBL", "Logitech"]),
    "gamer": dict(phones=["oneplus12", "iphone15pro", "galaxy_s24", "pixel8"],
                  groups=[(["ps5", "xbox_x", "switch_oled", "zephyrus_g14"], 1.0),
                          (["switch_oled", "steam_deck", "ps5"], 0.5)],
                  interests=["gaming"], optional=["music", "fast-charging", "smart-home"],
                  budget=(150, 600), brands=["Razer", "SteelSeries", "Logitech", "HyperX"]),
    "photographer": dict(phones=["pixel8pro", "iphone15pro", "galaxy_s24u", "pixel8"],
                         groups=[(["eos_r50", "sony_a7iv", "sony_zve10", "fuji_xs20"], 1.0),
                                 (["dji_mini4", "gopro12", "macbook_air", "ipad_air"], 0.5)],
                         interests=["photography"], optional=["travel", "outdoors", "content-creation"],
                         budget=(300, 1500), brands=["Peak Design", "SanDisk", "DJI"]),
    "commuter": dict(phones=["pixel8", "galaxy_s24", "iphone15", "iphone14", "galaxy_s23", "oneplus12"],
                     groups=[(["kindle_pw", "kobo_clara", "watch"], 0.6)],
                     interests=["travel"], optional=["music", "fast-charging", "students"],
                     budget=(100, 350), brands=["Anker", "Sony", "Belkin"]),
    "parent": dict(phones=["iphone15", "galaxy_s24", "pixel7a", "iphone14", "galaxy_a54"],
                   groups=[(["ipad10", "tab_p12"], 1.0), (["switch_oled"], 0.5)],
                   interests=["kids"], optional=["smart-home", "protection", "gaming"],
                   budget=(75, 300), brands=["OtterBox", "JBL", "Amazon"]),
    "professional": dict(phones=["iphone15pro", "galaxy_s24u", "galaxy_s24", "pixel8pro", "iphone15"],
                         groups=[(["xps13", "thinkpad_x1", "macbook_air"], 1.0),
                                 (["ipad_air", "tab_s9", "watch"], 0.4)],
                         interests=["work-from-home"], optional=["travel", "fast-charging", "music"],
                         budget=(200, 1200), brands=["Logitech", "Dell", "Bose", "Belkin"]),
    "fitness": dict(phones=["iphone15", "pixel8", "galaxy_s24", "iphone14", "pixel7a", "galaxy_s23"],
                    groups=[(["watch"], 1.0), (["gopro12"], 0.25)],
                    interests=["fitness"], optional=["outdoors", "music", "travel"],
                    budget=(100, 400), brands=["Garmin", "Jabra", "Shokz"]),
    "audiophile": dict(phones=["iphone15pro", "pixel8pro", "galaxy_s24", "iphone15", "oneplus12"],
                       groups=[(["macbook_air", "zenbook14", "ipad_air"], 0.5)],
                       interests=["music"], optional=["travel", "work-from-home"],
                       budget=(250, 600), brands=["Sony", "Sennheiser", "Audio-Technica", "Sonos"]),
}
WATCHES_FOR_PHONE_BRAND = {
    "Apple": ["aw_s9", "aw_se", "fr265", "fr255", "charge6"],
    "Samsung": ["galaxy_watch6", "fr265", "charge6", "pixel_watch2"],
    "Google": ["pixel_watch2", "galaxy_watch6", "fr265", "charge6"],
    "OnePlus": ["pixel_watch2", "galaxy_watch6", "fr265"],
}
DISLIKE_POOL = ["Spigen", "OtterBox", "Belkin", "Anker", "Beats", "JBL", "Samsung", "Apple", "Logitech",
                "Bose", "Sony", "Google"]

# ------------------------------------------------------------ service phrasings
# intent -> [(user text, template id)]. {order} becomes a fake order number like
# "#VW-48213"; {item} becomes something the user bought (alias or title).
SERVICE_PHRASES = {
    "track_order": [
        ("where is my order?", "track_order_ask_id"),
        ("hey, my package still hasn't arrived, can you check where it is", "track_order_ask_id"),
        ("how do I track my order", "track_order_ask_id"),
        ("wheres my order at??", "track_order_ask_id"),
        ("can u tell me the status of my delivery", "track_order_ask_id"),
        ("I ordered last week and haven't had any shipping update yet", "track_order_ask_id"),
        ("can you check the status of order {order}?", "track_order_status"),
        ("tracking for {order} please", "track_order_status"),
        ("where is {order}? it was supposed to be here yesterday", "track_order_delayed"),
        ("my order {order} is late, it's been a week", "track_order_delayed"),
        ("order {order} hasn't moved in days, what's going on", "track_order_delayed"),
    ],
    "cancel_order": [
        ("I want to cancel my order", "cancel_order_steps"),
        ("please cancel {order}", "cancel_order_steps"),
        ("how do i cancel an order i placed this morning", "cancel_order_steps"),
        ("changed my mind about my purchase, I need to cancel it", "cancel_order_steps"),
        ("cancle order {order} pls", "cancel_order_steps"),
        ("can I still cancel {order}? it says shipped already", "cancel_order_shipped"),
        ("my order already shipped but I don't want it anymore, can I cancel?", "cancel_order_shipped"),
    ],
    "change_order": [
        ("I need to change the colour of something in order {order}", "change_order_items"),
        ("can I add another item to {order}?", "change_order_items"),
        ("ordered the wrong model, can I swap it before it ships?", "change_order_items"),
        ("how do i modify my order", "change_order_items"),
        ("need to change the quantity on my order", "change_order_items"),
    ],
    "change_shipping_address": [
        ("I moved, how do I change the delivery address for {order}?", "change_shipping_address"),
        ("wrong address on my order!! can you fix it", "change_shipping_address"),
        ("can I ship my order to my office instead of home?", "change_shipping_address"),
        ("need to update the shipping adress on {order}", "change_shipping_address"),
    ],
    "shipping_options": [
        ("what shipping options do you have?", "shipping_options_overview"),
        ("how much is express shipping", "shipping_options_overview"),
        ("whats the fastest delivery option", "shipping_options_overview"),
        ("do you offer free shipping?", "shipping_free_threshold"),
        ("is shipping free if i spend over a certain amount", "shipping_free_threshold"),
    ],
    "delivery_time": [
        ("how long does delivery take?", "delivery_time_estimate"),
        ("if I order today when will it arrive", "delivery_time_estimate"),
        ("how many days is standard shipping", "delivery_time_estimate"),
        ("when will my stuff get here if i pick express", "delivery_time_estimate"),
    ],
    "international_shipping": [
        ("do you ship to Canada?", "international_shipping_info"),
        ("can I order from the UK", "international_shipping_info"),
        ("do you deliver internationally", "international_shipping_info"),
        ("shipping to mexico possible?", "international_shipping_info"),
    ],
    "return_item": [
        ("how do I return the {item}?", "return_item_steps"),
        ("I want to send back the {item}, it's not what I expected", "return_item_steps"),
        ("need to return something i bought 2 weeks ago", "return_item_steps"),
        ("can i return my {item}? not happy with it", "return_item_steps"),
        ("what's the return policy for opened items?", "return_item_opened"),
        ("can i return headphones i've already used a couple of times", "return_item_opened"),
    ],
    "exchange_item": [
        ("can I exchange the {item} for a different colour?", "exchange_item_steps"),
        ("I got the wrong size, can I swap it?", "exchange_item_steps"),
        ("want to exchange my {item} for another model", "exchange_item_steps"),
        ("how do exchanges work?", "exchange_item_steps"),
    ],
    "refund_status": [
        ("I returned the {item} last week, where's my refund?", "refund_status_check"),
        ("when will I get my money back for {order}?", "refund_status_check"),
        ("my refund hasn't shown up yet", "refund_status_check"),
        ("status of my refund pls", "refund_status_check"),
    ],
    "refund_policy": [
        ("what's your refund policy?", "refund_policy_overview"),
        ("how long do refunds take?", "refund_policy_overview"),
        ("do you refund the shipping cost too?", "refund_policy_overview"),
        ("can I get my money back instead of store credit", "refund_policy_overview"),
    ],
    "damaged_item": [
        ("my {item} arrived with a cracked screen", "damaged_item_report"),
        ("the box was crushed and the {item} inside is damaged", "damaged_item_report"),
        ("the {item} doesn't turn on right out of the box", "damaged_item_report"),
        ("item arrived broken, what do i do", "damaged_item_report"),
    ],
    "missing_item": [
        ("my order {order} arrived but the {item} wasn't in the box", "missing_item_report"),
        ("package says delivered but I never got it", "missing_item_report"),
        ("one item is missing from my order", "missing_item_report"),
        ("tracking says delivered but there's nothing at my door", "missing_item_report"),
    ],
    "warranty_info": [
        ("what warranty comes with the {item}?", "warranty_info_standard"),
        ("how long is the warranty on laptops", "warranty_info_standard"),
        ("warranty period for phones?", "warranty_info_standard"),
        ("do you sell extended warranties?", "warranty_info_extended"),
        ("is there a protection plan I can add?", "warranty_info_extended"),
    ],
    "warranty_claim": [
        ("my {item} stopped charging after 8 months, is that covered?", "warranty_claim_steps"),
        ("how do I make a warranty claim", "warranty_claim_steps"),
        ("the left earbud died, I think it's still under warranty", "warranty_claim_steps"),
        ("my {item} has a dead pixel, can I get it repaired under warranty?", "warranty_claim_steps"),
    ],
    "payment_methods": [
        ("what payment methods do you accept?", "payment_methods_list"),
        ("can I pay with PayPal?", "payment_methods_list"),
        ("do you take apple pay", "payment_methods_list"),
        ("is amex accepted", "payment_methods_list"),
        ("payment options?", "payment_methods_list"),
    ],
    "payment_issue": [
        ("my card keeps getting declined at checkout", "payment_issue_declined"),
        ("payment failed but i dont know why", "payment_issue_declined"),
        ("checkout says payment error", "payment_issue_declined"),
        ("I was charged twice for {order}", "payment_issue_double_charge"),
        ("there are two charges on my card for one order", "payment_issue_double_charge"),
    ],
    "invoice_request": [
        ("I need an invoice for {order}", "invoice_request_download"),
        ("where can I download my receipt?", "invoice_request_download"),
        ("can you send me an invoice with my company name on it", "invoice_request_download"),
        ("need a copy of the invoice for expenses", "invoice_request_download"),
    ],
    "create_account": [
        ("how do I create an account?", "create_account_steps"),
        ("I want to sign up", "create_account_steps"),
        ("can i make an account after ordering as a guest?", "create_account_steps"),
        ("registering a new acount", "create_account_steps"),
    ],
    "delete_account": [
        ("please delete my account", "delete_account_steps"),
        ("how do I close my Voltway account?", "delete_account_steps"),
        ("I want all my data removed", "delete_account_steps"),
        ("delete acount", "delete_account_steps"),
    ],
    "reset_password": [
        ("I forgot my password", "reset_password_steps"),
        ("can't log in, the password reset email never arrives", "reset_password_steps"),
        ("how do i reset my password", "reset_password_steps"),
        ("locked out of my account", "reset_password_steps"),
    ],
    "edit_account": [
        ("how do I change the email on my account?", "edit_account_details"),
        ("need to update my phone number in my profile", "edit_account_details"),
        ("change my name on the account", "edit_account_details"),
        ("where can I edit my saved addresses", "edit_account_details"),
    ],
    "newsletter_unsubscribe": [
        ("stop sending me emails", "newsletter_unsubscribe_steps"),
        ("how do I unsubscribe from the newsletter", "newsletter_unsubscribe_steps"),
        ("too many promo emails, unsubscribe me", "newsletter_unsubscribe_steps"),
        ("opt out of marketing emails", "newsletter_unsubscribe_steps"),
    ],
    "newsletter_subscribe": [
        ("how do i sign up for your newsletter", "newsletter_subscribe_steps"),
        ("I want to get deal alerts by email", "newsletter_subscribe_steps"),
    ],
    "price_match": [
        ("do you price match?", "price_match_policy"),
        ("I found the {item} cheaper at another store, can you match it?", "price_match_policy"),
        ("the price dropped a week after I bought it, can I get the difference?", "price_match_policy"),
        ("price match policy?", "price_match_policy"),
    ],
    "store_hours": [
        ("what are your opening hours?", "store_hours_info"),
        ("when is customer service available", "store_hours_info"),
        ("are you open on sundays", "store_hours_info"),
        ("what time does support close today", "store_hours_info"),
    ],
    "contact_human": [
        ("I want to talk to a real person", "contact_human_handoff"),
        ("can I speak to a human agent", "contact_human_handoff"),
        ("agent please", "contact_human_handoff"),
        ("connect me to a representative", "contact_human_handoff"),
        ("what's your phone number?", "contact_human_phone"),
        ("how can I call customer service", "contact_human_phone"),
    ],
    "complaint": [
        ("this is the second time my order has been late, I'm really unhappy", "complaint_apology"),
        ("your service has been terrible", "complaint_apology"),
        ("nobody answered my email for a week, not impressed", "complaint_apology"),
        ("I'd like to make a formal complaint", "complaint_escalate"),
        ("I want to file a complaint about the delivery driver", "complaint_escalate"),
    ],
    "gift_card": [
        ("do you sell gift cards?", "gift_card_buy"),
        ("want to buy an e-gift card for my brother", "gift_card_buy"),
        ("how do I check my gift card balance", "gift_card_balance"),
        ("can I use a gift card together with my credit card?", "gift_card_balance"),
    ],
    "student_discount": [
        ("do you have a student discount?", "student_discount_info"),
        ("I'm a student, any discounts on laptops?", "student_discount_info"),
        ("how do i verify student status for the discount", "student_discount_info"),
    ],
    "trade_in": [
        ("can I trade in my old phone?", "trade_in_info"),
        ("do you do trade-ins for the {item}?", "trade_in_info"),
        ("how much would I get for trading in an old laptop", "trade_in_info"),
        ("trade-in program details?", "trade_in_info"),
    ],
    "review": [
        ("how do I leave a review for the {item}?", "review_steps"),
        ("where can I write a product review", "review_steps"),
    ],
}

# Relative weight of each service intent when drawing a service question.
SERVICE_WEIGHTS = dict({k: 2 for k in SERVICE_PHRASES},
                       track_order=6, return_item=4, cancel_order=3, refund_status=3, damaged_item=3,
                       product_availability=5, product_compatibility=6, warranty_claim=3,
                       newsletter_subscribe=1, review=1)

# A natural second question after a first one.
FOLLOW_UPS = {
    "track_order": ["delivery_time", "change_shipping_address"],
    "cancel_order": ["refund_status", "refund_policy"],
    "return_item": ["refund_status", "exchange_item"],
    "damaged_item": ["exchange_item", "refund_status"],
    "missing_item": ["contact_human"],
    "shipping_options": ["international_shipping", "delivery_time"],
    "warranty_info": ["warranty_claim"],
    "warranty_claim": ["contact_human"],
    "payment_issue": ["payment_methods", "contact_human"],
    "complaint": ["contact_human"],
    "create_account": ["edit_account", "newsletter_subscribe"],
    "reset_password": ["edit_account"],
    "delete_account": ["newsletter_unsubscribe"],
    "refund_policy": ["return_item"],
    "price_match": ["student_discount"],
    "student_discount": ["price_match"],
    "trade_in": ["gift_card"],
    "gift_card": ["payment_methods"],
    "invoice_request": ["payment_methods"],
}
FOLLOW_UP_LEADS = ["ok, and ", "thanks. ", "got it. also, ", "ok cool. ", "alright, and ", "one more thing: "]
ORDER_ID_REPLIES = ["it's {order}", "{order}", "sure, it's {order}", "the order number is {order}",
                    "ok it's {order} i think", "{order}, thanks"]
GREETINGS = ["hi", "hello", "hey there", "hi, I need some help", "hello, quick question", "hey"]
THANKS = ["thanks!", "thank you so much", "great, thanks", "perfect, that helps", "ok cool thx",
          "thanks, that's all", "appreciate it"]

AVAILABILITY_PHRASES = ["is the {x} in stock?", "do you have the {x} available?", "is {x} available right now",
                        "hi, any stock of the {x}?", "can I still buy the {x}?"]
AVAILABILITY_OOS_PHRASES = ["when will the {x} be back in stock?", "the {x} says sold out, any idea when it's back?"]
COMPAT_PHRASES = ["will the {a} work with my {d}?", "is the {a} compatible with the {d}?",
                  "does the {a} fit a {d}?", "quick question - {a} with my {d}, will that work?",
                  "can I use the {a} with my {d}"]
TAKE_ALT = ["ok, I'll take that one instead", "great, add that one to my cart please", "sure, I'll get that"]

# ------------------------------------------------------------ recommendation phrasings
# category -> (singular, plural) as customers say it
CAT_WORDS = {
    "phone-cases": ("case", "cases"), "screen-protectors": ("screen protector", "screen protectors"),
    "watch-bands": ("band", "bands"), "fitness-accessories": ("heart rate strap", "heart rate straps"),
    "tablet-cases": ("case", "cases"), "styluses": ("stylus", "styluses"),
    "e-reader-covers": ("cover", "covers"), "laptop-bags": ("laptop sleeve or bag", "laptop sleeves and bags"),
    "mice": ("mouse", "mice"), "keyboards": ("keyboard", "keyboards"), "monitors": ("monitor", "monitors"),
    "usb-hubs": ("usb-c hub", "usb-c hubs"), "webcams": ("webcam", "webcams"), "storage": ("storage drive", "storage drives"),
    "camera-lenses": ("lens", "lenses"), "memory-cards": ("memory card", "memory cards"),
    "tripods": ("tripod", "tripods"), "camera-bags": ("camera bag", "camera bags"),
    "camera-batteries": ("spare battery", "spare batteries"), "gimbals": ("gimbal", "gimbals"),
    "drone-accessories": ("battery kit", "battery kits"), "chargers": ("charger", "chargers"),
    "power-banks": ("power bank", "power banks"), "cables": ("cable", "cables"),
    "game-controllers": ("controller", "controllers"), "gaming-headsets": ("gaming headset", "gaming headsets"),
    "console-cases": ("carrying case", "carrying cases"), "video-games": ("game", "games"),
    "headphones": ("headphones", "headphones"), "earbuds": ("earbuds", "earbuds"),
    "speakers": ("speaker", "speakers"), "smart-home": ("smart home device", "smart home devices"),
    "routers": ("router", "routers"), "tablets": ("tablet", "tablets"), "laptops": ("laptop", "laptops"),
    "smartphones": ("phone", "phones"), "smartwatches": ("smartwatch", "smartwatches"),
    "cameras": ("camera", "cameras"), "e-readers": ("e-reader", "e-readers"),
    "fitness-trackers": ("fitness tracker", "fitness trackers"),
}
ACCESSORY_REQUESTS = [
    "can you recommend a {c} for my {d}?", "what {c} would you suggest for the {d}?",
    "I need a {c} for my {d}{b}", "looking for a good {c} for my {d}, any ideas?",
    "just got a {d}, what's a good {c} for it{b}?", "which {c} fits the {d}{b}?",
    "any {cp} for the {d}{b}?", "recommend me a {c} for my {d} please",
]
BUDGET_PHRASES = [" under ${x}", " for less than ${x}", ", budget is about ${x}", " (max ${x})"]
# (category, need, user phrasings, how the agent names the purpose)
NEED_REQUESTS = [
    ("earbuds", "fitness", ["I need wireless earbuds for running{b}", "what earbuds stay in during workouts?{b}",
                            "looking for sweatproof earbuds for the gym{b}"], "workouts"),
    ("earbuds", "music", ["looking for earbuds with really good sound{b}", "recommend me some wireless earbuds{b}"],
     "great sound on the go"),
    ("earbuds", "travel", ["I want noise cancelling earbuds for my commute{b}"], "commuting"),
    ("headphones", "travel", ["looking for noise cancelling headphones for flights{b}",
                              "best headphones for long haul flights?{b}"], "flights and travel"),
    ("headphones", "music", ["I want proper over-ear headphones for music{b}"], "listening to music"),
    ("headphones", "work-from-home", ["need headphones for calls and focus when working from home{b}"],
     "calls and focus at home"),
    ("headphones", "kids", ["looking for headphones for my kid{b}"], "kids"),
    ("speakers", "outdoors", ["need a waterproof bluetooth speaker for the beach{b}",
                              "looking for a speaker for camping trips{b}"], "the outdoors"),
    ("speakers", "music", ["want a good speaker for the living room{b}"], "music at home"),
    ("power-banks", "travel", ["need a power bank for travelling{b}", "looking for a portable charger for trips{b}"],
     "travel"),
    ("gaming-headsets", "gaming", ["looking for a gaming headset{b}", "need a headset for online games{b}"],
     "gaming"),
    ("webcams", "work-from-home", ["my laptop webcam is awful, I need a better one for video calls{b}"],
     "video calls"),
    ("keyboards", "work-from-home", ["I need a comfortable keyboard for working from home{b}"],
     "working from home"),
    ("mice", "work-from-home", ["can you recommend an ergonomic mouse?{b}"], "long work days"),
    ("mice", "gaming", ["I need a gaming mouse{b}"], "gaming"),
    ("monitors", "work-from-home", ["looking for a monitor for my home office{b}"], "a home office"),
    ("monitors", "gaming", ["I need a gaming monitor{b}"], "gaming"),
    ("routers", "gaming", ["my wifi lags in online games, I need a better router{b}"], "lag-free gaming"),
    ("routers", "work-from-home", ["wifi doesn't reach my home office, what router or mesh would help?{b}"],
     "reliable Wi-Fi at home"),
    ("smart-home", "smart-home", ["I want to start with smart home stuff, where do I begin?{b}"],
     "a smart home starter setup"),
    ("tablets", "kids", ["looking for a tablet for my kids{b}"], "kids"),
    ("laptops", "students", ["I need a laptop for college{b}"], "school"),
    ("e-readers", "travel", ["want an e-reader for holidays{b}"], "reading on holiday"),
    ("cameras", "content-creation", ["I want to start a youtube channel, which camera should I get?{b}"],
     "content creation"),
    ("cameras", "photography", ["want to get into photography, what camera should i buy{b}"], "photography"),
    ("smartwatches", "fitness", ["looking for a watch to track my runs{b}"], "tracking your runs"),
    ("video-games", "kids", ["any good games for the kids?"], "family game time"),
    ("video-games", "gaming", ["what are some good new games?"], "your next game night"),
    ("game-controllers", "gaming", ["need an extra controller for multiplayer{b}"], "multiplayer"),
    ("chargers", "fast-charging", ["I need a faster charger{b}", "my phone charges so slowly, any better charger?{b}"],
     "faster charging"),
]
GIFT_PERSONAS = [("a gamer", "gaming"), ("a runner", "fitness"), ("a music lover", "music"),
                 ("a student", "students"), ("a photographer", "photography"), ("a frequent traveller", "travel"),
                 ("a kid", "kids"), ("a hiker", "outdoors"), ("someone who works from home", "work-from-home"),
                 ("a smart home fan", "smart-home")]
GIFT_RELATIONS = ["brother", "sister", "dad", "mom", "partner", "friend", "nephew", "niece", "colleague", "son",
                  "daughter"]
GIFT_REQUESTS = ["looking for a gift for my {r}, {p}{b}", "need a present for {p}{b}",
                 "gift ideas for {p}{b}?", "what would you get {p} as a gift{b}?"]
GIFT_CATEGORIES = ["headphones", "earbuds", "speakers", "smart-home", "power-banks", "keyboards", "mice",
                   "routers", "camera-bags", "tripods"]
UPGRADE_REQUESTS = ["thinking about upgrading my {d}, what would you suggest?",
                    "my {d} is getting old, what should I get next?", "what's a good upgrade from the {d}?"]
NOT_BRAND = ["hmm, I'm not a fan of {b}. anything else?", "any options that aren't {b}?",
             "I'd rather avoid {b}, what else is there?", "not {b} please", "something other than {b}?"]
NOT_THAT_BRAND = ["not that brand, anything else?", "hmm not that brand please", "any other brand?"]
CHEAPER = ["anything cheaper?", "those are a bit pricey, do you have something cheaper?",
           "hmm, is there a more budget-friendly option?", "got anything for less?"]
ACCEPT = ["I'll take the {r}", "great, add the {r} to my cart please", "the {r} sounds perfect, I'll get it",
          "ok let's go with the {r}", "perfect, I'll order the {r}"]
DECLINE = ["thanks, I'll think about it", "ok thanks, I'll have a look", "cool, thanks!",
           "nice, I'll check them out later"]
BOTH_LEADS = ["also, ", "one more thing: ", "while I have you, ", "oh and ", "also - "]

# ============================================================ 5. builders

GROUPS = {
    "phones": lambda d: d["category"] == "smartphones",
    "tablets": lambda d: d["category"] == "tablets",
    "laptops": lambda d: d["category"] == "laptops",
    "ipads": lambda d: "ipad" in d["tags"],
    "qi": lambda d: "qi" in d["tags"],
    "magsafe": lambda d: "magsafe" in d["tags"],
    "lightning": lambda d: "lightning" in d["tags"],
    "usbc": lambda d: "usbc" in d["tags"],
    "microsd": lambda d: "microsd" in d["tags"],
    "sd": lambda d: "sd" in d["tags"],
    "ilc": lambda d: "ilc" in d["tags"],
    "apple-watch": lambda d: "apple-watch" in d["tags"],
    "hdmi-laptops": lambda d: d["category"] == "laptops" and "hdmi" in d["tags"],
    "hdmi-consoles": lambda d: d["category"] == "gaming-consoles" and "hdmi" in d["tags"],
    "usba-laptops": lambda d: d["category"] == "laptops" and "usb-a" in d["tags"],
    "tb-laptops": lambda d: d["category"] == "laptops" and "thunderbolt" in d["tags"],
}


def resolve_group(spec, devices):
    """'@qi' -> keys of devices with that tag; '@charge:65' -> USB-PD devices needing <= 65 W."""
    name = spec[1:]
    if name.startswith("charge:"):
        watts = int(name.split(":", 1)[1])
        return [d["key"] for d in devices if d["charge_w"] is not None and d["charge_w"] <= watts]
    if name not in GROUPS:
        raise ValueError(f"unknown compatibility group {spec}")
    return [d["key"] for d in devices if GROUPS[name](d)]


class Catalogue:
    """The product records plus lookups used by every generator."""

    def __init__(self, rng):
        keys = [p["key"] for p in PRODUCTS]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate product keys: {dupes}")
        self.items = []
        for i, p in enumerate(PRODUCTS):
            rec = dict(p, id=f"VW-{1001 + i}")
            self.items.append(rec)
        self.by_key = {r["key"]: r for r in self.items}
        self.by_id = {r["id"]: r for r in self.items}
        self.devices = [r for r in self.items if r["category"] in DEVICE_CATEGORIES]
        for r in self.items:
            compat = []
            for spec in r["compat_spec"]:
                for k in (resolve_group(spec, self.devices) if spec.startswith("@") else [spec]):
                    if k not in self.by_key:
                        raise ValueError(f"{r['key']}: unknown compatible device {k}")
                    if k not in compat:
                        compat.append(k)
            r["compat"] = compat
        for r in self.items:
            if r["oos"]:
                r["stock"] = 0
            elif self.is_device(r):
                r["stock"] = rng.randint(3, 40)
            else:
                r["stock"] = rng.randint(6, 180)
        self.compatible = {d["key"]: [r["key"] for r in self.items if d["key"] in r["compat"]]
                           for d in self.devices}
        self.successor_of = dict(SUCCESSORS)

    @staticmethod
    def is_device(r):
        return r["category"] in DEVICE_CATEGORIES

    def get(self, key):
        return self.by_key[key]

    def in_stock(self, r):
        return r["stock"] > 0

    def row(self, r):
        """The public catalogue.jsonl object for one record."""
        return {"id": r["id"], "title": r["title"], "description": r["desc"], "category": r["category"],
                "brand": r["brand"], "price": r["price"], "stock": r["stock"], "attributes": r["attrs"],
                "aliases": r["aliases"]}


def build_triples(cat):
    t = set()
    for r in cat.items:
        t.add((r["id"], "brand", f"brand:{r['brand']}"))
        t.add((r["id"], "category", f"category:{r['category']}"))
        for n in r["needs"]:
            t.add((r["id"], "suits_need", f"need:{n}"))
        if r["series"]:
            t.add((r["id"], "in_series", f"series:{r['series']}"))
        for k in r["compat"]:
            t.add((r["id"], "compatible_with", cat.get(k)["id"]))
    for child, parent in CATEGORY_PARENT.items():
        t.add((f"category:{child}", "subcategory_of", f"category:{parent}"))
    used = {r["category"] for r in cat.items}
    for acc_cat, dev_cats in ACCESSORY_OF.items():
        if acc_cat in used:
            for dc in dev_cats:
                t.add((f"category:{acc_cat}", "accessory_of", f"category:{dc}"))
    for new, old in SUCCESSORS:
        t.add((cat.get(new)["id"], "successor_of", cat.get(old)["id"]))
    return sorted(t)


def build_templates():
    rows = []
    for tid, intent, text, slots in TEMPLATES:
        used = slot_names(text)
        rows.append({"id": tid, "intent": intent, "text": text,
                     "slots": {k: v for k, v in slots.items() if k in used}})
    return rows


SLOT_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


def slot_names(text):
    """Slot names in a template text, as the runtime finds them."""
    return SLOT_RE.findall(text)


# ------------------------------------------------------------ time helpers

def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:00Z")


def rand_dt(rng, start, end):
    """A random minute between two datetimes, during waking hours."""
    days = (end - start).days
    d = start + timedelta(days=rng.randint(0, max(days, 0)))
    return d.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59))


# ------------------------------------------------------------ users

class UserState:
    """What a user owns over time; drives events and conversations."""

    def __init__(self, row, devices):
        self.row = row
        self.id = row["id"]
        self.first_name = row["name"].split()[0]
        self.devices = list(devices)          # device keys, in purchase order
        self.owned = []                        # item keys currently owned (purchased, not returned)
        self.returned = []
        self.purchases = []                    # (key, datetime)
        prefs = row["preferences"]
        self.liked = prefs.get("brands_liked", [])
        self.disliked = prefs.get("brands_disliked", [])
        self.budget = prefs.get("budget")
        self.interests = prefs.get("interests", [])

    def owns(self, key):
        return key in self.owned

    def phone(self, cat):
        for k in self.devices:
            if cat.get(k)["category"] == "smartphones":
                return cat.get(k)
        return None


def build_users(rng, cat):
    seg_names = [s for s in SEGMENTS for _ in range(len(USER_NAMES) // len(SEGMENTS))]
    rng.shuffle(seg_names)
    users = []
    for i, name in enumerate(USER_NAMES):
        seg = seg_names[i]
        cfg = SEGMENTS[seg]
        phone = rng.choice(cfg["phones"])
        devices = [phone]
        for pool, prob in cfg["groups"]:
            if rng.random() >= prob or len(devices) >= 3:
                continue
            expanded = []
            for k in pool:
                expanded += WATCHES_FOR_PHONE_BRAND[cat.get(phone)["brand"]] if k == "watch" else [k]
            options = [k for k in expanded if k not in devices]
            if options:
                devices.append(rng.choice(options))
        interests = list(cfg["interests"])
        for extra in rng.sample(cfg["optional"], rng.randint(1, 2)):
            interests.append(extra)
        device_brands = [cat.get(k)["brand"] for k in devices]
        liked = [cat.get(phone)["brand"]]
        for b in rng.sample(cfg["brands"], rng.randint(1, 2)):
            if b not in liked:
                liked.append(b)
        pool = [b for b in DISLIKE_POOL if b not in liked and b not in device_brands]
        roll = rng.random()
        disliked = rng.sample(pool, 2 if roll < 0.3 else 1) if roll < 0.75 else []
        lo, hi = cfg["budget"]
        prefs = {"brands_liked": liked}
        if disliked:
            prefs["brands_disliked"] = disliked
        prefs["budget"] = rng.randint(lo // 25, hi // 25) * 25
        prefs["interests"] = interests
        row = {"id": f"U{i + 1:03d}", "name": name, "segment": seg, "location": rng.choice(CITIES),
               "preferences": prefs}
        users.append(UserState(row, devices))
    return users


# ------------------------------------------------------------ scoring shared by events and conversations

def pref_score(rng, u, r, cat, noise=1.5):
    s = 1.5 * len(set(r["needs"]) & set(u.interests))
    if r["brand"] in u.liked:
        s += 2.0
    if r["brand"] in {cat.get(k)["brand"] for k in u.devices}:
        s += 1.0
    return s + rng.random() * noise


def fits_user_devices(r, u):
    """Device-specific items must fit one of the user's devices; universal items always fit."""
    return not r["compat"] or any(k in u.devices for k in r["compat"])


def watch_ok(r, u, cat):
    """Smartwatches must work with the user's phone platform."""
    ww = r["attrs"].get("works_with")
    if r["category"] not in ("smartwatches", "fitness-trackers") or not ww:
        return True
    phone = u.phone(cat)
    if phone is None:
        return True
    platform = "iPhone" if phone["brand"] == "Apple" else "Android"
    return platform in ww


# An out-of-stock item's stand-in must agree on these attributes (a wireless pad for a
# wireless pad, a Lightning cable for a Lightning cable, an RF lens for an RF lens).
ALTERNATIVE_MUST_MATCH = ["wireless", "connector", "mount", "format", "magsafe", "works_with"]

CATEGORY_PRIOR = {"phone-cases": 2.5, "screen-protectors": 1.0, "watch-bands": 1.5, "tablet-cases": 2.0,
                  "camera-lenses": 1.5, "memory-cards": 1.5, "game-controllers": 1.5, "video-games": 2.0,
                  "laptop-bags": 1.0, "styluses": 1.0, "e-reader-covers": 1.5}


# ------------------------------------------------------------ events

class EventLog:
    def __init__(self):
        self.rows = []

    def add(self, u, r, kind, when, rating=None):
        row = {"user_id": u.id, "item_id": r["id"], "type": kind, "ts": ts(when)}
        if rating is not None:
            row["rating"] = rating
        self.rows.append(row)

    def buy(self, u, r, when):
        self.add(u, r, "purchase", when)
        u.purchases.append((r["key"], when))
        if r["key"] not in u.owned:
            u.owned.append(r["key"])

    def sorted_rows(self):
        order = {"view": 0, "purchase": 1, "rating": 2, "return": 3}
        return sorted(self.rows, key=lambda e: (e["ts"], e["user_id"], order[e["type"]], e["item_id"]))


def history_events(rng, cat, users, log):
    """Purchases, views, ratings and returns before the conversation period."""
    start, end = datetime(2025, 4, 1), datetime(2025, 11, 15)
    for u in users:
        bought = []  # (record, datetime)
        for k in u.devices:
            d = cat.get(k)
            when = rand_dt(rng, start, end)
            view_alternatives(rng, cat, u, d, when, log)
            log.buy(u, d, when)
            bought.append((d, when))
        # accessories for the devices
        dev_when = {k: w for (r, w) in bought for k in [r["key"]]}
        cands = [r for r in cat.items if not cat.is_device(r) and r["compat"]
                 and any(k in u.devices for k in r["compat"]) and r["price"] <= max(u.budget, 120)
                 and r["brand"] not in u.disliked]
        scored = sorted(cands, key=lambda r: -(pref_score(rng, u, r, cat, 2.0) + CATEGORY_PRIOR.get(r["category"], 0)))
        n_acc, seen_cats = rng.randint(1, 3), set()
        for r in scored:
            if len(seen_cats) >= n_acc:
                break
            if r["category"] in seen_cats:
                continue
            seen_cats.add(r["category"])
            base = max(dev_when[k] for k in r["compat"] if k in dev_when)
            when = base + timedelta(days=rng.randint(0, 25), minutes=rng.randint(5, 600))
            view_alternatives(rng, cat, u, r, when, log)
            log.buy(u, r, when)
            bought.append((r, when))
        # something for one or two interests
        for need in rng.sample(u.interests, min(2, len(u.interests))):
            if rng.random() > 0.6:
                continue
            cands = [r for r in cat.items if not cat.is_device(r) and need in r["needs"]
                     and fits_user_devices(r, u) and r["price"] <= u.budget and not u.owns(r["key"])
                     and r["brand"] not in u.disliked]
            if not cands:
                continue
            r = max(cands, key=lambda r: pref_score(rng, u, r, cat, 3.0))
            when = rand_dt(rng, start, end)
            view_alternatives(rng, cat, u, r, when, log)
            log.buy(u, r, when)
            bought.append((r, when))
        # browsing
        browse = [r for r in cat.items if not u.owns(r["key"]) and fits_user_devices(r, u)
                  and set(r["needs"]) & set(u.interests)]
        for r in rng.sample(browse, min(len(browse), rng.randint(2, 5))):
            log.add(u, r, "view", rand_dt(rng, start, end))
        # one return for some users, then ratings
        returned = None
        accessories = [(r, w) for r, w in bought if not cat.is_device(r)]
        if accessories and rng.random() < 0.2:
            returned = rng.choice(accessories)
            r, w = returned
            back = w + timedelta(days=rng.randint(3, 20))
            if rng.random() < 0.6:
                log.add(u, r, "rating", back - timedelta(hours=2), rating=rng.choice([1, 2, 2]))
            log.add(u, r, "return", back)
            u.owned.remove(r["key"])
            u.returned.append(r["key"])
        for r, w in bought:
            if returned and r is returned[0]:
                continue
            if rng.random() < 0.55:
                if cat.is_device(r):
                    stars = rng.choice([3, 4, 5, 5, 5])
                elif r["brand"] in u.liked:
                    stars = rng.choice([4, 5, 5])
                else:
                    stars = rng.choice([2, 3, 4, 4, 5, 5])
                log.add(u, r, "rating", w + timedelta(days=rng.randint(4, 30)), rating=stars)


def view_alternatives(rng, cat, u, r, when, log):
    """Views before a purchase: the item itself and maybe a same-category alternative."""
    log.add(u, r, "view", when - timedelta(minutes=rng.randint(3, 90)))
    alts = [a for a in cat.items if a["category"] == r["category"] and a is not r
            and (not r["compat"] or set(a["compat"]) & set(r["compat"]))]
    if alts and rng.random() < 0.7:
        log.add(u, rng.choice(alts), "view", when - timedelta(hours=rng.randint(2, 72)))


# ------------------------------------------------------------ conversations

def price(r):
    return f"${r['price']:.2f}"


def mention(r):
    """How the agent names an item: exact catalogue title and price."""
    return f"the {r['title']} ({price(r)})"


def join_list(parts):
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


NICE_BUDGETS = [20, 25, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000]


def nice_budget(cands):
    """A round 'under $X' that keeps at least two candidates, or None if it wouldn't constrain."""
    prices = sorted(r["price"] for r in cands)
    if len(prices) < 3:
        return None
    for x in NICE_BUDGETS:
        if x >= prices[1]:
            return x if x < prices[-1] else None
    return None


class ConversationBuilder:
    """Builds one logged conversation for a user and records its side-effect events."""

    def __init__(self, rng, cat, u, started, log):
        self.rng, self.cat, self.u, self.started, self.log = rng, cat, u, started, log
        self.turns = []
        self.order_id = None
        self.name = u.first_name if rng.random() < 0.6 else None
        self.minute = 0

    # -- turn helpers
    def tick(self):
        self.minute += self.rng.randint(1, 3)
        return self.started + timedelta(minutes=self.minute)

    def user(self, text):
        self.turns.append({"role": "user", "text": text})

    def agent(self, text, intent, template_id=None, recommended=None):
        t = {"role": "agent", "text": text, "intent": intent}
        if template_id:
            t["template_id"] = template_id
        if recommended:
            t["recommended"] = [r["id"] for r in recommended]
            t["accepted"] = []
            when = self.tick()
            for r in recommended:
                self.log.add(self.u, r, "view", when)
        self.turns.append(t)
        return t

    def templated(self, tid, extra="", recommended=None, **values):
        text = fill_template(tid, dict(values, customer_name=self.name))
        if extra:
            text += " " + extra
        return self.agent(text, TEMPLATE_INTENT[tid], tid, recommended)

    def lead(self, lead, text):
        """Prefix a connective ("also, ") and lower-case the sentence start after it."""
        if lead and text[:1].isupper() and not text.startswith(("I ", "I'")):
            text = text[0].lower() + text[1:]
        return lead + text

    def style(self, text):
        """Customer phrasing: random case, a dropped '?' and the odd typo; placeholders stay intact."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            text = text.lower().rstrip("?!.")
        elif roll < 0.6 and text[:1].isalpha():
            text = text[0].upper() + text[1:]
        if rng.random() < 0.12:
            words = text.split(" ")
            idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w.islower()]
            if idx:
                i = rng.choice(idx)
                w = words[i]
                j = rng.randint(1, len(w) - 3)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
                text = " ".join(words)
        return text

    def new_order_id(self):
        if self.order_id is None:
            self.order_id = f"#VW-{self.rng.randint(10000, 99999)}"
        return self.order_id

    def say_item(self, r):
        """How the customer names an item: an alias or the (possibly lower-cased) title."""
        if r["aliases"] and self.rng.random() < 0.65:
            return self.rng.choice(r["aliases"])
        return r["title"].lower() if self.rng.random() < 0.4 else r["title"]

    def recent_purchase(self, devices_ok=True):
        keys = [k for k, _ in self.u.purchases if devices_ok or not self.cat.is_device(self.cat.get(k))]
        return self.cat.get(self.rng.choice(keys[-4:])) if keys else None

    def can_buy(self, r):
        """Users own at most three devices, so a fourth device is never bought."""
        return not self.cat.is_device(r) or len(self.u.devices) < 3

    def buy(self, r):
        self.log.buy(self.u, r, self.tick() + timedelta(minutes=self.rng.randint(2, 8)))
        if self.cat.is_device(r):
            self.u.devices.append(r["key"])

    # -- service
    def service(self, intent, lead="", follow_up=False):
        if intent == "product_availability":
            return self.availability(lead)
        if intent == "product_compatibility":
            return self.compatibility(lead)
        phrases = SERVICE_PHRASES[intent]
        if follow_up:
            phrases = [p for p in phrases if p[1] != "track_order_ask_id"]
        if not self.u.purchases:
            phrases = [p for p in phrases if "{item}" not in p[0]]
        text, tid = self.rng.choice(phrases)
        values, fmt = {}, {}
        if "{order}" in text:
            fmt["order"] = values["order_id"] = self.new_order_id()
        elif self.order_id and follow_up:
            values["order_id"] = self.order_id
        if "{item}" in text:
            r = self.recent_purchase(devices_ok=intent not in ("exchange_item",))
            fmt["item"] = self.say_item(r)
            values["item_title"] = r["title"]
        self.user(self.lead(lead, self.style(text).format(**fmt)))
        if tid == "track_order_ask_id":
            self.templated(tid)
            oid = self.new_order_id()
            self.user(self.rng.choice(ORDER_ID_REPLIES).format(order=oid))
            tid, values = "track_order_status", {"order_id": oid}
        self.templated(tid, **values)

    def availability(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        oos = [r for r in cat.items if not cat.in_stock(r)]
        related = [r for r in cat.items if cat.in_stock(r) and not u.owns(r["key"])
                   and (r["compat"] and fits_user_devices(r, u) or set(r["needs"]) & set(u.interests))]
        r = rng.choice(oos) if rng.random() < 0.45 else rng.choice(related)
        pool = AVAILABILITY_PHRASES + (AVAILABILITY_OOS_PHRASES if not cat.in_stock(r) else [])
        self.user(self.lead(lead, self.style(rng.choice(pool)).format(x=self.say_item(r))))
        self.log.add(u, r, "view", self.tick())
        if cat.in_stock(r):
            self.templated("availability_in_stock", item_title=r["title"])
            if rng.random() < 0.3 and len(self.turns) <= 6 and self.can_buy(r):
                self.user(self.style(rng.choice(["great, add it to my cart", "ok I'll order it then",
                                                 "perfect, I'll buy it"])))
                self.templated(rng.choice(["add_to_cart_confirm", "add_to_cart_confirm_express"]),
                               item_title=r["title"])
                self.buy(r)
            return
        alt, why = self.alternative_for(r)
        extra = f"In the meantime, {mention(alt)} is in stock{why}." if alt else ""
        turn = self.templated("availability_out_of_stock", extra=extra, recommended=[alt] if alt else None,
                              item_title=r["title"])
        if alt:
            self.maybe_take(turn, alt, 0.35)

    def alternative_for(self, r):
        """An in-stock stand-in for an out-of-stock item, personalised to the user's devices."""
        cat, u = self.cat, self.u
        cands = [a for a in cat.items if a["category"] == r["category"] and a is not r and cat.in_stock(a)
                 and not u.owns(a["key"]) and watch_ok(a, u, cat)]
        for key in ALTERNATIVE_MUST_MATCH:
            if key in r["attrs"]:
                cands = [a for a in cands if a["attrs"].get(key) == r["attrs"][key]]
        if r["compat"]:
            cands = [a for a in cands if set(a["compat"]) & set(r["compat"])]
        else:
            cands = [a for a in cands if 0.5 * r["price"] <= a["price"] <= 1.6 * r["price"]]
        if not cands:
            return None, ""
        alt = max(cands, key=lambda a: pref_score(self.rng, u, a, cat)
                  + 2.0 * bool(set(a["compat"]) & set(u.devices)) + (a["brand"] == r["brand"]))
        if r["compat"]:
            shared = [k for k in alt["compat"] if k in r["compat"]]
            mine = [k for k in shared if k in u.devices]
            dev_key = (mine or shared)[0]
            return alt, f" and also fits the {cat.get(dev_key)['short']}"
        return alt, " and is a similar option"

    def maybe_take(self, turn, alt, p):
        if (self.rng.random() < p and len(self.turns) <= 6 and alt["brand"] not in self.u.disliked
                and self.can_buy(alt)):
            self.user(self.style(self.rng.choice(TAKE_ALT)))
            self.templated(self.rng.choice(["add_to_cart_confirm", "add_to_cart_confirm_express"]),
                           item_title=alt["title"])
            turn["accepted"] = [alt["id"]]
            self.buy(alt)

    def compatibility(self, lead):
        cat, u, rng = self.cat, self.u, self.rng
        devs = [k for k in u.devices if cat.compatible[k]]
        if not devs:
            return self.availability(lead)
        d = cat.get(rng.choice(devs))
        cats = sorted({cat.get(k)["category"] for k in cat.compatible[d["key"]]})
        c = rng.choice(cats)
        yes = [cat.get(k) for k in cat.compatible[d["key"]] if cat.get(k)["category"] == c]
        no = [r for r in cat.items if r["category"] == c and r["compat"] and d["key"] not in r["compat"]]
        fits = not no or rng.random() < 0.5
        a = rng.choice(yes if fits else no)
        text = rng.choice(COMPAT_PHRASES)
        a_name = a["title"].lower() if rng.random() < 0.4 else a["title"]
        self.user(self.lead(lead, self.style(text).format(a=a_name, d=self.say_item(d))))
        if fits:
            self.templated("compatibility_yes", item_title=a["title"])
            return
        alts = [r for r in yes if cat.in_stock(r) and not u.owns(r["key"])]
        alt = max(alts, key=lambda r: pref_score(rng, u, r, cat)) if alts else None
        extra = f"For your {d['short']}, {mention(alt)} is a great fit." if alt else ""
        turn = self.templated("compatibility_no", extra=extra, recommended=[alt] if alt else None,
                              item_title=a["title"])
        if alt:
            self.maybe_take(turn, alt, 0.4)

    # -- recommendation
    def candidates_ok(self, r):
        u = self.u
        return self.cat.in_stock(r) and not u.owns(r["key"]) and r["key"] not in u.returned

    def request(self):
        """Pick a feasible recommendation request: (user text, candidates, k, intro, tail, context)."""
        kinds = ["accessory"] * 45 + ["need"] * 30 + ["gift"] * 12 + ["upgrade"] * 13
        order = []
        first = self.rng.choice(kinds)
        order.append(first)
        order += [k for k in ("accessory", "need", "upgrade", "gift") if k != first]
        for kind in order:
            req = getattr(self, "req_" + kind)()
            if req:
                return req
        return None

    def req_accessory(self):
        cat, u, rng = self.cat, self.u, self.rng
        options = []
        for k in u.devices:
            by_cat = {}
            for a in cat.compatible[k]:
                r = cat.get(a)
                if self.candidates_ok(r):
                    by_cat.setdefault(r["category"], []).append(r)
            for c, rs in sorted(by_cat.items()):
                if len(rs) >= 2 and c in CAT_WORDS:
                    fit = sum(bool(set(r["needs"]) & set(u.interests)) for r in rs) / len(rs)
                    weight = 1 + CATEGORY_PRIOR.get(c, 0) + fit
                    options.append((weight, k, c, rs))
        if not options:
            return None
        total = sum(w for w, *_ in options)
        x = rng.random() * total
        for w, k, c, rs in options:
            x -= w
            if x <= 0:
                break
        d = cat.get(k)
        phrasing = rng.choice(ACCESSORY_REQUESTS)
        budget = nice_budget(rs) if "{b}" in phrasing and rng.random() < 0.45 else None
        if budget:
            rs = [r for r in rs if r["price"] <= budget]
        sing, plural = CAT_WORDS[c]
        btxt = rng.choice(BUDGET_PHRASES).format(x=budget) if budget else ""
        text = self.style(phrasing.replace("{b}", "<b>"))
        text = text.format(c=sing, cp=plural, d=self.say_item(d)).replace("<b>", btxt)
        intro = rng.choice([f"Here are a few {plural} that fit your {d['short']}: {{L}}.",
                            f"For your {d['short']}, I'd suggest {{L}}.",
                            f"Good news, we have several {plural} made for the {d['short']}: {{L}}."])
        tails = ["{All} in stock and ship within one business day.",
                 f"Each one is confirmed compatible with the {d['short']}.", ""]
        tail = f"{{All}} under ${budget}." if budget else rng.choice(tails)
        return dict(text=text, cands=rs, intro=intro, tail=tail, device=d)

    def req_need(self):
        cat, u, rng = self.cat, self.u, self.rng
        feasible = []
        for c, need, phrasings, purpose in NEED_REQUESTS:
            rs = [r for r in cat.items if r["category"] == c and need in r["needs"] and self.candidates_ok(r)
                  and fits_user_devices(r, u) and watch_ok(r, u, cat)]
            if c in DEVICE_CATEGORIES and any(cat.get(k)["category"] == c for k in u.devices):
                continue  # already owns one: that would be an upgrade request instead
            if len(rs) >= 2:
                feasible.append((c, need, phrasings, purpose, rs))
        mine = [f for f in feasible if f[1] in u.interests]
        pool = mine if mine and rng.random() < 0.8 else feasible
        if not pool:
            return None
        c, need, phrasings, purpose, rs = rng.choice(pool)
        budget = None
        if rng.random() < 0.5:
            budget = nice_budget(rs)
        elif c not in DEVICE_CATEGORIES and u.budget and len([r for r in rs if r["price"] <= u.budget]) >= 2:
            rs = [r for r in rs if r["price"] <= u.budget]  # the agent knows the profile budget
        if budget:
            rs = [r for r in rs if r["price"] <= budget]
        btxt = rng.choice(BUDGET_PHRASES).format(x=budget) if budget else ""
        text = self.style(rng.choice(phrasings).replace("{b}", "<b>")).replace("<b>", btxt)
        intro = rng.choice([f"For {purpose}, I'd look at {{L}}.", f"Here are some great options for {purpose}: {{L}}.",
                            f"Good question! For {purpose}, customers love {{L}}."])
        tail = f"{{All}} under ${budget}." if budget else ""
        return dict(text=text, cands=rs, intro=intro, tail=tail, device=None)

    def req_gift(self):
        cat, u, rng = self.cat, self.u, self.rng
        persona, need = rng.choice(GIFT_PERSONAS)
        cap = min(u.budget or 200, rng.choice([50, 75, 100, 150, 200, 300]))
        rs = [r for r in cat.items if r["category"] in GIFT_CATEGORIES and need in r["needs"]
              and self.candidates_ok(r) and r["price"] <= cap]
        if len(rs) < 2:
            return None
        btxt = rng.choice(BUDGET_PHRASES).format(x=cap)
        tmpl = rng.choice(GIFT_REQUESTS).replace("{b}", "<b>")
        text = self.style(tmpl).format(r=rng.choice(GIFT_RELATIONS), p=persona).replace("<b>", btxt)
        intro = f"Nice idea! For {persona} and a budget of ${cap}, popular picks are {{L}}."
        return dict(text=text, cands=rs, intro=intro, tail="", device=None, diverse=True)

    def req_upgrade(self):
        cat, u, rng = self.cat, self.u, self.rng
        options = []
        for k in u.devices:
            d = cat.get(k)
            rs = [r for r in cat.items if r["category"] == d["category"] and r is not d and self.candidates_ok(r)
                  and r["price"] >= 0.75 * d["price"] and watch_ok(r, u, cat)]
            if len(rs) >= 2:
                options.append((d, rs))
        if not options:
            return None
        d, rs = rng.choice(options)
        text = self.style(rng.choice(UPGRADE_REQUESTS)).format(d=self.say_item(d))
        intro = f"If you're ready to move on from the {d['short']}, I'd look at {{L}}."
        succ = [r for r in rs if cat.successor_of.get(r["key"]) == d["key"]]
        tail = f"The {succ[0]['title']} is the direct successor to your {d['short']}." if succ else ""
        return dict(text=text, cands=rs, intro=intro, tail=tail, device=d, successor=succ)

    def rank(self, req, cands):
        cat, u = self.cat, self.u
        succ = {r["key"] for r in req.get("successor", [])}
        dev_brand = req["device"]["brand"] if req.get("device") else None
        scored = []
        for r in cands:
            s = pref_score(self.rng, u, r, cat)
            s += 3.0 * (r["key"] in succ) + 1.0 * (r["brand"] == dev_brand)
            scored.append((s, r["id"], r))
        return [r for _, _, r in sorted(scored, key=lambda x: (-x[0], x[1]))]

    def pick(self, req, ranked, k):
        if not req.get("diverse"):
            return ranked[:k]
        out, cats = [], set()
        for r in ranked:
            if r["category"] not in cats:
                out.append(r)
                cats.add(r["category"])
        out += [r for r in ranked if r not in out]
        return out[:k]

    def recommend(self, lead="", max_turns=6):
        rng, u = self.rng, self.u
        req = self.request()
        if req is None:
            return False
        self.user(self.lead(lead, req["text"]))
        ranked = self.rank(req, req["cands"])
        shown = self.pick(req, ranked, min(len(ranked), rng.choice([2, 3, 3, 4])))
        text = req["intro"].replace("{L}", join_list([mention(r) for r in shown]))
        personal = self.personal_note(shown, req)
        tail = req["tail"].replace("{All}", "Both are" if len(shown) == 2 else "All of them are")
        for extra in (tail, personal):
            if extra:
                text += " " + extra
        turn = self.agent(text, "recommend_product", recommended=shown)
        left = max_turns - 2
        # follow-up: avoid a brand, or ask for cheaper
        bad = [r["brand"] for r in shown if r["brand"] in u.disliked]
        if left >= 2 and (bad or rng.random() < 0.3):
            if bad:
                brand = bad[0]
                rest = [r for r in ranked if r["brand"] != brand]
                if rest:
                    pool = NOT_THAT_BRAND if shown[0]["brand"] == brand and rng.random() < 0.5 else NOT_BRAND
                    self.user(self.style(rng.choice(pool)).format(b=brand))
                    shown = rest[:rng.choice([2, 3])]
                    lead_text = rng.choice([f"No problem, here are some options from other brands: {{L}}.",
                                            f"Sure! Leaving out {brand}, I'd go with {{L}}."])
                    if len(shown) == 1:
                        lead_text = f"No problem. Leaving out {brand}, the best fit is {{L}}."
                    turn = self.agent(lead_text.replace("{L}", join_list([mention(r) for r in shown])),
                                      "recommend_product", recommended=shown)
                    left -= 2
            else:
                floor = min(r["price"] for r in shown)
                cheaper = [r for r in ranked if r["price"] < floor]
                if cheaper:
                    self.user(self.style(rng.choice(CHEAPER)))
                    shown = cheaper[:rng.choice([1, 2, 3])]
                    lead_text = rng.choice(["Sure, here are some lower-priced options: {L}.",
                                            "Of course. For less money, take a look at {L}."])
                    if len(shown) == 1:
                        lead_text = "Sure, the most affordable option that fits is {L}."
                    turn = self.agent(lead_text.replace("{L}", join_list([mention(r) for r in shown])),
                                      "recommend_product", recommended=shown)
                    left -= 2
        if left >= 2:
            liked = [r for r in shown if r["brand"] not in u.disliked and self.can_buy(r)]
            if liked and rng.random() < 0.6:
                choice = max(liked, key=lambda r: pref_score(rng, u, r, self.cat, 1.0))
                self.user(self.style(rng.choice(ACCEPT)).format(r=self.refer(choice, shown)))
                self.templated(rng.choice(["add_to_cart_confirm", "add_to_cart_confirm_express"]),
                               item_title=choice["title"])
                turn["accepted"] = [choice["id"]]
                self.buy(choice)
            elif rng.random() < 0.5:
                self.user(self.style(rng.choice(DECLINE)))
                self.templated("thanks_reply_short")
        return True

    def refer(self, r, shown):
        brands = [s["brand"] for s in shown]
        if brands.count(r["brand"]) == 1 and self.rng.random() < 0.6:
            return f"{r['brand']} one"
        if self.rng.random() < 0.5:
            return ["first one", "second one", "third one", "fourth one"][shown.index(r)]
        return r["title"].lower() if self.rng.random() < 0.5 else r["title"]

    def personal_note(self, shown, req):
        """Mention an owned device when the top pick shares its ecosystem (brand)."""
        if req.get("device"):
            return ""
        top = shown[0]
        if top["compat"]:
            return ""  # device-specific items are already matched to the user's devices
        for k in self.u.devices:
            d = self.cat.get(k)
            if d["brand"] == top["brand"] and not self.cat.is_device(top):
                return f"The {top['title']} pairs especially well with your {d['short']}."
        return ""

    # -- whole conversations
    def service_conversation(self):
        rng = self.rng
        if rng.random() < 0.15:
            self.user(self.style(rng.choice(GREETINGS)))
            self.templated("greeting_welcome")
        intent = weighted_choice(rng, SERVICE_WEIGHTS)
        self.service(intent)
        if intent in FOLLOW_UPS and len(self.turns) <= 6 and rng.random() < 0.35:
            nxt = rng.choice(FOLLOW_UPS[intent])
            if nxt not in ("product_availability", "product_compatibility"):
                self.service(nxt, lead=rng.choice(FOLLOW_UP_LEADS), follow_up=True)
        if len(self.turns) <= 6 and self.turns[-1]["role"] == "agent" and rng.random() < 0.4:
            self.user(self.style(rng.choice(THANKS)))
            self.templated(rng.choice(["thanks_reply", "thanks_reply_short"]))

    def both_conversation(self):
        rng = self.rng
        intent = weighted_choice(rng, {k: v for k, v in SERVICE_WEIGHTS.items()
                                       if k not in ("product_availability", "product_compatibility")})
        self.service(intent)
        return self.recommend(lead=rng.choice(BOTH_LEADS), max_turns=8 - len(self.turns))

    def row(self, cid):
        return {"conversation_id": cid, "user_id": self.u.id, "started_at": ts(self.started),
                "turns": self.turns}


def weighted_choice(rng, weights):
    keys = sorted(weights)
    x = rng.random() * sum(weights[k] for k in keys)
    for k in keys:
        x -= weights[k]
        if x <= 0:
            return k
    return keys[-1]


TEMPLATE_TEXT = {t[0]: t[2] for t in TEMPLATES}
TEMPLATE_DEFAULTS = {t[0]: t[3] for t in TEMPLATES}
TEMPLATE_INTENT = {t[0]: t[1] for t in TEMPLATES}


def fill_template(tid, values):
    """Render a template like the runtime does: given values, then shop facts, then defaults."""
    def val(name):
        if values.get(name):
            return str(values[name])
        if name in SHOP:
            return str(SHOP[name])
        return TEMPLATE_DEFAULTS[tid][name]
    return SLOT_RE.sub(lambda m: val(m.group(1)), TEMPLATE_TEXT[tid])


N_CONVERSATIONS = 336


def build_transcripts(rng, cat, users, log):
    start, end = datetime(2026, 1, 20), datetime(2026, 3, 31)
    plan = []
    order = list(users)
    rng.shuffle(order)
    for i in range(N_CONVERSATIONS):
        u = order[i] if i < len(order) else rng.choice(users)
        roll = rng.random()
        kind = "service" if roll < 0.5 else "recommend" if roll < 0.85 else "both"
        plan.append((rand_dt(rng, start, end), u.id, kind, u))
    plan.sort(key=lambda p: (p[0], p[1]))
    rows = []
    for n, (when, _, kind, u) in enumerate(plan, start=1):
        conv = ConversationBuilder(rng, cat, u, when, log)
        if kind == "recommend":
            ok = conv.recommend()
        elif kind == "both":
            ok = conv.both_conversation()
        else:
            ok = False
        if not ok and kind != "service":
            conv = ConversationBuilder(rng, cat, u, when, log)
            kind = "service"
        if kind == "service":
            conv.service_conversation()
        rows.append(conv.row(f"C{n:04d}"))
    return rows


# ============================================================ 6. self-checks and writing

MIN_COUNTS = {"catalogue": 160, "templates": 45, "kg": 900, "users": 60, "events": 600, "transcripts": 320}
PREDICATES = {"brand", "category", "subcategory_of", "compatible_with", "accessory_of", "suits_need",
              "successor_of", "in_series"}
RUNTIME_SLOTS = {"customer_name", "order_id", "item_title"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SNAKE_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
POPULAR_WITH_OOS_ACCESSORY = ["pixel8", "galaxy_s24", "iphone15", "iphone14", "ipad_air", "switch_oled", "aw_s9"]


def check_all(cat, catalogue, templates, triples, users, events, transcripts):
    """Every referential-integrity rule from docs/formats.md; returns a list of problems."""
    p = []
    counts = {"catalogue": len(catalogue), "templates": len(templates), "kg": len(triples), "users": len(users),
              "events": len(events), "transcripts": len(transcripts)}
    for k, n in MIN_COUNTS.items():
        if counts[k] < n:
            p.append(f"{k}: {counts[k]} rows, need at least {n}")
    for k in ["name", "currency", "support_email", "support_phone", "website", "hours", "return_window_days",
              "refund_days", "warranty_years", "extended_warranty_years", "free_shipping_threshold",
              "standard_shipping_days", "express_shipping_days", "express_shipping_price", "payment_methods",
              "price_match_days"]:
        if not isinstance(SHOP.get(k), (str, int, float)) or SHOP.get(k) in ("", None):
            p.append(f"shop.json: missing or empty {k}")

    # catalogue
    items = {r["id"]: r for r in catalogue}
    if len(items) != len(catalogue):
        p.append("catalogue: duplicate ids")
    alias_owner = {}
    leaves = set(CATEGORY_PARENT) - set(CATEGORY_PARENT.values())
    for r in catalogue:
        where = f"catalogue {r['id']}"
        if re.search(r"\s", r["id"]) or not r["title"]:
            p.append(f"{where}: bad id or empty title")
        if r["category"] not in leaves:
            p.append(f"{where}: category {r['category']} is not a leaf of the taxonomy")
        if not (isinstance(r["price"], float) and r["price"] > 0):
            p.append(f"{where}: price must be a positive float")
        if not (isinstance(r["stock"], int) and r["stock"] >= 0):
            p.append(f"{where}: stock must be an int >= 0")
        sentences = len(re.findall(r"[.!?](?:\s|$)", r["description"]))
        if not 1 <= sentences <= 2:
            p.append(f"{where}: description has {sentences} sentences")
        for k, v in r["attributes"].items():
            ok = isinstance(v, (str, int, float, bool)) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            if not ok:
                p.append(f"{where}: attribute {k} has unsupported type")
        for a in r["aliases"]:
            if a != a.lower() or a != a.strip() or not a:
                p.append(f"{where}: alias {a!r} must be lowercase and trimmed")
            if a in alias_owner:
                p.append(f"{where}: alias {a!r} already used by {alias_owner[a]}")
            alias_owner[a] = r["id"]
        if r["category"] in DEVICE_CATEGORIES and not r["aliases"]:
            p.append(f"{where}: devices need at least one alias")
    oos = sum(1 for r in catalogue if r["stock"] == 0) / len(catalogue)
    if not 0.07 <= oos <= 0.15:
        p.append(f"catalogue: {oos:.0%} out of stock, expected about 10%")
    for k in POPULAR_WITH_OOS_ACCESSORY:
        acc_keys = cat.compatible[k]
        if not any(cat.get(a)["stock"] == 0 for a in acc_keys):
            p.append(f"catalogue: {k} has no out-of-stock compatible accessory")
        by_cat = {}
        for a in acc_keys:
            by_cat.setdefault(cat.get(a)["category"], set()).add(cat.get(a)["brand"])
        if max(len(b) for b in by_cat.values()) < 2:
            p.append(f"catalogue: {k} has no accessory category with two brands")

    # templates
    tpl = {}
    allowed = set(SHOP) | RUNTIME_SLOTS
    per_intent = {}
    for t in templates:
        where = f"template {t['id']}"
        if t["id"] in tpl:
            p.append(f"{where}: duplicate id")
        tpl[t["id"]] = t
        if not SNAKE_RE.match(t["id"]) or not SNAKE_RE.match(t["intent"]):
            p.append(f"{where}: id and intent must be snake_case")
        per_intent[t["intent"]] = per_intent.get(t["intent"], 0) + 1
        if "{" in SLOT_RE.sub("", t["text"]) or "}" in SLOT_RE.sub("", t["text"]):
            p.append(f"{where}: literal brace outside a {{slot}}")
        for name in slot_names(t["text"]):
            if name not in allowed:
                p.append(f"{where}: slot {{{name}}} is not a shop fact or runtime slot")
            if name in RUNTIME_SLOTS and name not in t["slots"]:
                p.append(f"{where}: slot {name} needs a default in 'slots'")
        for k in t["slots"]:
            if k not in slot_names(t["text"]):
                p.append(f"{where}: default for unused slot {k}")
    for intent in REQUIRED_INTENTS:
        if intent not in per_intent:
            p.append(f"templates: no template for intent {intent}")
    for intent, n in per_intent.items():
        if n > 3:
            p.append(f"templates: intent {intent} has {n} templates (max 3)")

    # knowledge graph
    if len(set(triples)) != len(triples):
        p.append("kg: duplicate triples")
    brand_of, cat_of = {}, {}
    prefixes = ("brand:", "category:", "need:", "series:")
    for s, pred, o in triples:
        where = f"kg ({s}, {pred}, {o})"
        if pred not in PREDICATES:
            p.append(f"{where}: unknown predicate")
        for e in (s, o):
            if e.startswith(prefixes) and e.split(":", 1)[0] != "brand" and not SLUG_RE.match(e.split(":", 1)[1]):
                p.append(f"{where}: {e} is not a lowercase-hyphen slug")
            if e.startswith(prefixes):
                if e.startswith("category:") and e[9:] not in CATEGORY_PARENT and e[9:] not in CATEGORY_PARENT.values():
                    p.append(f"{where}: unknown category")
                if e.startswith("need:") and e[5:] not in NEEDS:
                    p.append(f"{where}: unknown need")
            elif e not in items:
                p.append(f"{where}: unknown item id {e}")
        if pred == "brand":
            brand_of.setdefault(s, []).append(o)
        elif pred == "category":
            cat_of.setdefault(s, []).append(o)
        elif pred == "compatible_with":
            if s in items and items[s]["category"] in DEVICE_CATEGORIES + UNIVERSAL_CATEGORIES:
                p.append(f"{where}: subject must be a device-specific accessory")
            if o in items and items[o]["category"] not in DEVICE_CATEGORIES:
                p.append(f"{where}: object must be a device")
        elif pred == "successor_of":
            if s in items and o in items and items[s]["category"] != items[o]["category"]:
                p.append(f"{where}: successor in a different category")
        elif pred in ("subcategory_of", "accessory_of") and not (
                s.startswith("category:") and o.startswith("category:")):
            p.append(f"{where}: {pred} links categories only")
    for r in catalogue:
        if brand_of.get(r["id"]) != [f"brand:{r['brand']}"]:
            p.append(f"kg: {r['id']} brand triples {brand_of.get(r['id'])} disagree with catalogue")
        if cat_of.get(r["id"]) != [f"category:{r['category']}"]:
            p.append(f"kg: {r['id']} category triples {cat_of.get(r['id'])} disagree with catalogue")

    # users
    brands = {r["brand"] for r in catalogue}
    uids = {u["id"] for u in users}
    if len(uids) != len(users):
        p.append("users: duplicate ids")
    for u in users:
        prefs = u["preferences"]
        for b in prefs.get("brands_liked", []) + prefs.get("brands_disliked", []):
            if b not in brands:
                p.append(f"user {u['id']}: brand {b} is not in the catalogue")
        if set(prefs.get("brands_liked", [])) & set(prefs.get("brands_disliked", [])):
            p.append(f"user {u['id']}: a brand is both liked and disliked")
        for n in prefs.get("interests", []):
            if n not in NEEDS:
                p.append(f"user {u['id']}: unknown interest {n}")
        if not (isinstance(prefs.get("budget"), (int, float)) and prefs["budget"] > 0):
            p.append(f"user {u['id']}: budget must be a positive number")

    # events
    bought = set()
    devices_bought = {}
    for i, e in enumerate(events, start=1):
        where = f"events line {i}"
        if e["user_id"] not in uids or e["item_id"] not in items:
            p.append(f"{where}: unknown user or item")
            continue
        if e["type"] not in ("view", "purchase", "rating", "return") or not TS_RE.match(e["ts"]):
            p.append(f"{where}: bad type or timestamp")
        if (e["type"] == "rating") != ("rating" in e) or ("rating" in e and e["rating"] not in (1, 2, 3, 4, 5)):
            p.append(f"{where}: rating present iff type is rating, 1-5")
        if e["type"] == "purchase":
            bought.add((e["user_id"], e["item_id"]))
            if items[e["item_id"]]["category"] in DEVICE_CATEGORIES:
                devices_bought.setdefault(e["user_id"], set()).add(e["item_id"])
        if e["type"] == "return" and (e["user_id"], e["item_id"]) not in bought:
            p.append(f"{where}: return without an earlier purchase")
    for uid in sorted(uids):
        if not 1 <= len(devices_bought.get(uid, ())) <= 3:
            p.append(f"user {uid}: owns {len(devices_bought.get(uid, ()))} devices")

    # transcripts
    cids = set()
    for c in transcripts:
        where = f"transcript {c['conversation_id']}"
        if c["conversation_id"] in cids:
            p.append(f"{where}: duplicate id")
        cids.add(c["conversation_id"])
        if c["user_id"] not in uids or not TS_RE.match(c["started_at"]):
            p.append(f"{where}: unknown user or bad started_at")
        turns = c["turns"]
        if not 2 <= len(turns) <= 8:
            p.append(f"{where}: {len(turns)} turns")
        for i, t in enumerate(turns):
            want = "user" if i % 2 == 0 else "agent"
            if t["role"] != want:
                p.append(f"{where}: turn {i} should be {want}")
            if t["role"] == "user" and set(t) != {"role", "text"}:
                p.append(f"{where}: user turn {i} carries more than role and text")
            if t["role"] != "agent":
                continue
            if set(t) - {"role", "text", "intent", "template_id", "recommended", "accepted"}:
                p.append(f"{where}: turn {i} has unknown keys")
            tid = t.get("template_id")
            if tid:
                if tid not in tpl:
                    p.append(f"{where}: unknown template {tid}")
                elif t.get("intent") != tpl[tid]["intent"]:
                    p.append(f"{where}: turn {i} intent differs from its template's")
                elif not template_regex(tpl[tid]["text"]).match(t["text"]):
                    p.append(f"{where}: turn {i} text is not template {tid} with slots filled")
            for rid in t.get("recommended", []):
                if rid not in items:
                    p.append(f"{where}: unknown recommended item {rid}")
                    continue
                r = items[rid]
                if r["stock"] == 0:
                    p.append(f"{where}: recommends out-of-stock {rid}")
                if f"{r['title']} (${r['price']:.2f})" not in t["text"]:
                    p.append(f"{where}: turn {i} does not name {rid} with its exact title and price")
            if not set(t.get("accepted", [])) <= set(t.get("recommended", [])):
                p.append(f"{where}: accepted is not a subset of recommended")
    return p


def template_regex(text):
    out, pos = "", 0
    for m in SLOT_RE.finditer(text):
        out += re.escape(text[pos:m.start()])
        name = m.group(1)
        out += re.escape(str(SHOP[name])) if name in SHOP else ".+?"
        pos = m.end()
    return re.compile(out + re.escape(text[pos:]) + r"(?: .+)?$", re.S)


def conversation_kind(c):
    rec = any(t.get("recommended") for t in c["turns"])
    service_intents = {t.get("intent") for t in c["turns"] if t.get("template_id")} - {
        "greeting", "thanks", "add_to_cart"}
    return "both" if rec and service_intents else "recommend" if rec else "service"


def dump_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    try:
        return generate()
    except (KeyError, ValueError) as exc:
        print(f"make_demo_kb: generation failed, nothing written: {exc!r}", file=sys.stderr)
        return 1


def generate():
    rng = random.Random(SEED)
    cat = Catalogue(rng)
    catalogue = [cat.row(r) for r in cat.items]
    templates = build_templates()
    triples = build_triples(cat)
    users = build_users(rng, cat)
    log = EventLog()
    history_events(rng, cat, users, log)
    transcripts = build_transcripts(rng, cat, users, log)
    events = log.sorted_rows()
    user_rows = [u.row for u in users]

    problems = check_all(cat, catalogue, templates, triples, user_rows, events, transcripts)
    if problems:
        print(f"make_demo_kb: {len(problems)} problem(s), nothing written:", file=sys.stderr)
        for line in problems[:80]:
            print("  " + line, file=sys.stderr)
        return 1

    os.makedirs(KB_DIR, exist_ok=True)
    with open(os.path.join(KB_DIR, "shop.json"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(SHOP, ensure_ascii=False, indent=2) + "\n")
    dump_jsonl(os.path.join(KB_DIR, "catalogue.jsonl"), catalogue)
    dump_jsonl(os.path.join(KB_DIR, "templates.jsonl"), templates)
    with open(os.path.join(KB_DIR, "kg.tsv"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write("subject\tpredicate\tobject\n")
        for s, pred, o in triples:
            fh.write(f"{s}\t{pred}\t{o}\n")
    dump_jsonl(os.path.join(KB_DIR, "users.jsonl"), user_rows)
    dump_jsonl(os.path.join(KB_DIR, "events.jsonl"), events)
    dump_jsonl(os.path.join(KB_DIR, "transcripts.jsonl"), transcripts)

    kinds = {}
    for c in transcripts:
        k = conversation_kind(c)
        kinds[k] = kinds.get(k, 0) + 1
    oos = sum(1 for r in catalogue if r["stock"] == 0)
    print(f"kb/ written: {len(catalogue)} items ({oos} out of stock), {len(templates)} templates, "
          f"{len(triples)} triples, {len(user_rows)} users, {len(events)} events, "
          f"{len(transcripts)} conversations {dict(sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
