"""The synthetic catalogue's tables: Instacart's departments and aisles with a typical
repurchase cycle in days and base product names, aisles bought together, and brand names.
Data only; `basket.data.catalogue` builds products from it."""

from __future__ import annotations

# department -> aisle -> (repurchase cycle in days, base product names)
AISLES: dict[str, dict[str, tuple[int, tuple[str, ...]]]] = {
    "produce": {
        "fresh fruits": (
            6,
            (
                "Banana",
                "Strawberries",
                "Hass Avocado",
                "Large Lemon",
                "Limes",
                "Blueberries",
                "Raspberries",
                "Honeycrisp Apple",
                "Red Seedless Grapes",
                "Bartlett Pears",
            ),
        ),
        "fresh vegetables": (
            7,
            (
                "Baby Spinach",
                "Yellow Onions",
                "Garlic",
                "Cucumber Kirby",
                "Zucchini Squash",
                "Broccoli Crown",
                "Carrots",
                "Red Peppers",
                "Sweet Potato",
                "Jalapeno Peppers",
            ),
        ),
        "packaged vegetables fruits": (
            8,
            (
                "Baby Carrots",
                "Spring Mix",
                "Grape Tomatoes",
                "Baby Arugula",
                "Power Greens",
                "Celery Hearts",
                "Kale",
                "Sliced Mushrooms",
            ),
        ),
        "fresh herbs": (
            10,
            ("Cilantro", "Italian Parsley", "Basil", "Green Onions", "Fresh Dill", "Mint"),
        ),
    },
    "dairy eggs": {
        "milk": (
            6,
            (
                "Whole Milk",
                "Reduced Fat 2% Milk",
                "Fat Free Milk",
                "Half And Half",
                "Unsweetened Almondmilk",
                "Lactose Free Milk",
                "Chocolate Milk",
            ),
        ),
        "eggs": (
            9,
            (
                "Large Grade A Eggs",
                "Free Range Brown Eggs",
                "Large Brown Eggs",
                "Pasture Raised Eggs",
            ),
        ),
        "yogurt": (
            7,
            (
                "Greek Plain Yogurt",
                "Vanilla Yogurt",
                "Strawberry Yogurt",
                "Blueberry Greek Yogurt",
                "Whole Milk Plain Yogurt",
                "Honey Greek Yogurt",
            ),
        ),
        "packaged cheese": (
            12,
            (
                "Shredded Mozzarella",
                "Sharp Cheddar Cheese",
                "Sliced Provolone",
                "Grated Parmesan",
                "Feta Crumbles",
                "String Cheese",
            ),
        ),
        "butter": (18, ("Unsalted Butter", "Salted Butter", "Spreadable Butter")),
        "cream": (10, ("Heavy Whipping Cream", "Sour Cream", "Cream Cheese")),
    },
    "bakery": {
        "bread": (
            6,
            (
                "Whole Wheat Bread",
                "Sourdough Bread",
                "Multigrain Bread",
                "White Sandwich Bread",
                "Rye Bread",
            ),
        ),
        "buns rolls": (14, ("Hamburger Buns", "Hot Dog Buns", "Dinner Rolls", "Brioche Buns")),
        "tortillas flat bread": (
            12,
            ("Flour Tortillas", "Corn Tortillas", "Whole Wheat Tortillas", "Naan"),
        ),
    },
    "beverages": {
        "water seltzer sparkling water": (
            8,
            (
                "Sparkling Water",
                "Lime Sparkling Water",
                "Spring Water",
                "Grapefruit Sparkling Water",
                "Coconut Water",
            ),
        ),
        "juice nectars": (10, ("Orange Juice", "Apple Juice", "Lemonade", "Cranberry Juice")),
        "coffee": (
            14,
            ("Ground Coffee", "Whole Bean Coffee", "Cold Brew Coffee", "Decaf Ground Coffee"),
        ),
        "tea": (21, ("Green Tea", "Chamomile Tea", "Black Tea", "Peppermint Tea")),
        "soft drinks": (10, ("Cola", "Ginger Ale", "Lemon Lime Soda", "Root Beer")),
    },
    "snacks": {
        "chips pretzels": (
            10,
            (
                "Tortilla Chips",
                "Potato Chips",
                "Sea Salt Pita Chips",
                "Pretzel Twists",
                "Kettle Chips",
            ),
        ),
        "crackers": (
            14,
            ("Wheat Crackers", "Rice Crackers", "Cheddar Crackers", "Graham Crackers"),
        ),
        "cookies cakes": (14, ("Chocolate Chip Cookies", "Oatmeal Cookies", "Sandwich Cookies")),
        "nuts seeds dried fruit": (
            18,
            ("Raw Almonds", "Roasted Cashews", "Trail Mix", "Raisins", "Walnuts"),
        ),
        "energy granola bars": (12, ("Chewy Granola Bars", "Protein Bars", "Fruit And Nut Bars")),
    },
    "pantry": {
        "spreads": (
            21,
            (
                "Creamy Peanut Butter",
                "Almond Butter",
                "Strawberry Preserves",
                "Grape Jelly",
                "Honey",
            ),
        ),
        "oils vinegars": (
            35,
            ("Extra Virgin Olive Oil", "Canola Oil", "Balsamic Vinegar", "Apple Cider Vinegar"),
        ),
        "spices seasonings": (
            45,
            ("Sea Salt", "Black Peppercorns", "Ground Cinnamon", "Garlic Powder", "Chili Powder"),
        ),
        "baking ingredients": (
            30,
            (
                "All Purpose Flour",
                "Granulated Sugar",
                "Baking Soda",
                "Pure Vanilla Extract",
                "Brown Sugar",
            ),
        ),
        "condiments": (28, ("Yellow Mustard", "Tomato Ketchup", "Mayonnaise", "Sriracha Sauce")),
    },
    "dry goods pasta": {
        "dry pasta": (14, ("Spaghetti", "Penne Rigate", "Elbow Macaroni", "Rotini", "Linguine")),
        "pasta sauce": (
            14,
            ("Marinara Sauce", "Tomato Basil Sauce", "Alfredo Sauce", "Vodka Sauce", "Pesto"),
        ),
        "grains rice dried goods": (
            21,
            ("Long Grain White Rice", "Brown Rice", "Quinoa", "Rolled Oats", "Black Beans"),
        ),
    },
    "canned goods": {
        "canned meals beans": (
            21,
            ("Garbanzo Beans", "Refried Beans", "Kidney Beans", "Chicken Noodle Soup"),
        ),
        "soup broth bouillon": (
            21,
            ("Chicken Broth", "Vegetable Broth", "Tomato Soup", "Bone Broth"),
        ),
    },
    "breakfast": {
        "cereal": (
            12,
            ("Honey Nut Cereal", "Whole Grain Oat Cereal", "Granola", "Raisin Bran", "Corn Flakes"),
        ),
        "breakfast bakery": (
            10,
            ("Blueberry Muffins", "Plain Bagels", "English Muffins", "Croissants"),
        ),
    },
    "deli": {
        "lunch meat": (
            8,
            ("Oven Roasted Turkey Breast", "Black Forest Ham", "Genoa Salami", "Roast Beef"),
        ),
        "fresh dips tapenades": (10, ("Hummus", "Guacamole", "Fresh Salsa", "Tzatziki")),
        "prepared meals": (
            9,
            ("Rotisserie Chicken", "Chicken Caesar Salad", "Macaroni And Cheese"),
        ),
    },
    "meat seafood": {
        "poultry counter": (
            8,
            (
                "Boneless Skinless Chicken Breasts",
                "Chicken Thighs",
                "Ground Turkey",
                "Chicken Wings",
            ),
        ),
        "packaged meat": (
            9,
            ("Lean Ground Beef", "Thick Cut Bacon", "Pork Chops", "Italian Sausage"),
        ),
        "seafood counter": (
            12,
            ("Atlantic Salmon Fillet", "Raw Shrimp", "Cod Fillet", "Tilapia Fillet"),
        ),
        "hot dogs bacon sausage": (
            14,
            ("Beef Hot Dogs", "Chicken Sausage", "Turkey Bacon", "Breakfast Sausage"),
        ),
    },
    "frozen": {
        "frozen produce": (
            18,
            (
                "Frozen Blueberries",
                "Frozen Broccoli Florets",
                "Frozen Peas",
                "Frozen Mango Chunks",
                "Frozen Corn",
            ),
        ),
        "frozen meals": (
            14,
            ("Frozen Cheese Pizza", "Frozen Burritos", "Frozen Dumplings", "Frozen Lasagna"),
        ),
        "ice cream ice": (
            14,
            ("Vanilla Ice Cream", "Chocolate Ice Cream", "Mint Chip Ice Cream", "Fruit Popsicles"),
        ),
    },
    "household": {
        "laundry": (30, ("Laundry Detergent", "Fabric Softener", "Dryer Sheets", "Stain Remover")),
        "paper goods": (24, ("Paper Towels", "Toilet Paper", "Facial Tissues", "Paper Napkins")),
        "dish detergents": (30, ("Dish Soap", "Dishwasher Detergent Pods", "Rinse Aid")),
        "cleaning products": (40, ("All Purpose Cleaner", "Glass Cleaner", "Disinfecting Wipes")),
    },
    "personal care": {
        "oral hygiene": (
            45,
            ("Whitening Toothpaste", "Mouthwash", "Dental Floss", "Soft Toothbrush"),
        ),
        "body lotions soap": (35, ("Hand Soap", "Body Wash", "Moisturizing Lotion", "Bar Soap")),
        "hair care": (40, ("Shampoo", "Conditioner", "Hair Gel")),
    },
    "babies": {
        "diapers wipes": (9, ("Baby Diapers Size 3", "Baby Wipes", "Overnight Diapers Size 4")),
        "baby food formula": (7, ("Apple Banana Baby Food", "Infant Formula", "Pear Baby Food")),
    },
    "pets": {
        "dog food care": (28, ("Dry Dog Food", "Dog Treats", "Wet Dog Food")),
        "cat food care": (21, ("Dry Cat Food", "Wet Cat Food", "Cat Litter")),
    },
    "alcohol": {
        "beers coolers": (12, ("India Pale Ale", "Lager Beer", "Hard Seltzer")),
        "red wines": (18, ("Cabernet Sauvignon", "Pinot Noir", "Malbec")),
        "white wines": (18, ("Sauvignon Blanc", "Chardonnay", "Pinot Grigio")),
    },
    "international": {
        "asian foods": (25, ("Soy Sauce", "Coconut Milk", "Rice Noodles", "Sesame Oil")),
        "latino foods": (25, ("Taco Seasoning", "Taco Shells", "Enchilada Sauce")),
    },
}

# Pairs of aisles whose products are bought together: each product of the first
# aisle is paired with one product of the second (the generator's "bundles").
COMPLEMENTARY_AISLES: tuple[tuple[str, str], ...] = (
    ("dry pasta", "pasta sauce"),
    ("chips pretzels", "fresh dips tapenades"),
    ("cereal", "milk"),
    ("hot dogs bacon sausage", "buns rolls"),
    ("tortillas flat bread", "latino foods"),
    ("coffee", "cream"),
    ("crackers", "packaged cheese"),
    ("spreads", "bread"),
    ("dog food care", "paper goods"),
    ("red wines", "packaged cheese"),
)

_BRAND_FIRST = (
    "Green",
    "Sunny",
    "Happy",
    "Golden",
    "Blue",
    "Little",
    "Wild",
    "Simple",
    "Good",
    "True",
)
_BRAND_SECOND = (
    "Valley",
    "Farms",
    "Acres",
    "Harvest",
    "Meadow",
    "Creek",
    "Orchard",
    "Kitchen",
    "Pantry",
    "Garden",
)
BRANDS = tuple(f"{first} {second}" for first in _BRAND_FIRST for second in _BRAND_SECOND)
