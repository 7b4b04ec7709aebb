"""Write the bundled demo set, ``langchain_selfamplify/data/demo/demo_mcq.jsonl``.

The questions were written by the langchain-selfamplify developers (Apache-2.0), half
grade-school science, half everyday commonsense. Each line below is
``category | question | correct answer | distractor | distractor | distractor``; the
correct answer is placed at A, B, C, D in turn so the labels are balanced, and blocks
of four alternate between the ``pool`` and ``test`` splits (64 each, both balanced).

Run: ``python scripts/make_demo_set.py``
"""

from __future__ import annotations

import json
from pathlib import Path

QUESTIONS = """
science | Which gas do green plants take in from the air to make food? | carbon dioxide | oxygen | helium | nitrogen
science | What force pulls a dropped apple toward the ground? | gravity | magnetism | friction | wind
science | Which organ pumps blood through the human body? | the heart | the lungs | the liver | the stomach
science | Water turns into ice when it is cooled below which temperature? | 0 degrees Celsius | 50 degrees Celsius | 100 degrees Celsius | 37 degrees Celsius
science | Which planet is closest to the Sun? | Mercury | Mars | Jupiter | Neptune
science | What do we call an animal that eats only plants? | a herbivore | a carnivore | a predator | a scavenger
science | Which material is the best conductor of electricity? | copper | rubber | wood | glass
science | What is the main source of energy for life on Earth? | the Sun | the Moon | volcanoes | the ocean tides
science | Which part of a plant takes up water from the soil? | the roots | the flowers | the leaves | the seeds
science | What happens to most metals when they are heated? | they expand | they shrink | they melt at room temperature | they become magnetic
science | Which body system breaks food down into nutrients? | the digestive system | the skeletal system | the nervous system | the respiratory system
science | A caterpillar turning into a butterfly is an example of what? | metamorphosis | erosion | photosynthesis | condensation
science | Which tool is used to measure temperature? | a thermometer | a ruler | a balance | a compass
science | What do bees carry from flower to flower that helps plants make seeds? | pollen | sap | nectar bottles | soil
science | Which state of matter has a fixed shape and a fixed volume? | solid | liquid | gas | plasma
science | Why do we see lightning before we hear thunder? | light travels faster than sound | sound travels faster than light | thunder happens later | our ears are slower than our eyes by choice
science | What causes day and night on Earth? | Earth spinning on its axis | Earth orbiting the Sun | the Moon blocking the Sun | clouds covering the sky
science | Which of these is a renewable source of energy? | wind | coal | oil | natural gas
science | What is formed when water vapour cools high in the sky? | clouds | rocks | sand | soil
science | Which animal is a mammal? | a whale | a shark | a trout | a frog
science | Which gas do humans breathe out that plants use? | carbon dioxide | oxygen | hydrogen | argon
science | What is the hardest natural material? | diamond | chalk | talc | gold
science | Which simple machine is a ramp? | an inclined plane | a pulley | a lever | a wheel and axle
science | Where in the cell is most genetic material kept? | the nucleus | the cell wall | the vacuole | the membrane
science | What do we call rock that forms from cooled lava? | igneous rock | sedimentary rock | metamorphic rock | fossil rock
science | What causes the tides in the oceans? | the pull of the Moon | the wind | fish swimming | underwater volcanoes
science | Which object would a magnet attract? | an iron nail | a plastic spoon | a wooden block | a glass marble
science | What is the boiling point of water at sea level? | 100 degrees Celsius | 0 degrees Celsius | 50 degrees Celsius | 212 degrees Celsius
science | Which layer of Earth do we live on? | the crust | the mantle | the outer core | the inner core
science | What do lungs take from the air? | oxygen | carbon dioxide | water | nitrogen only
science | A shadow forms when an object does what to light? | blocks it | reflects all colours | creates it | speeds it up
science | Which is the largest planet in our solar system? | Jupiter | Earth | Venus | Mercury
science | Fossils are most often found in which kind of rock? | sedimentary rock | igneous rock | lava | granite
science | What do we call the path a planet follows around the Sun? | an orbit | an axis | an eclipse | a tide
science | Which sense organ detects sound? | the ear | the nose | the tongue | the skin
science | Plants make their food through which process? | photosynthesis | digestion | respiration in soil | evaporation
science | Which of these is a source of light? | a candle flame | a mirror | the Moon | a window
science | What type of energy does a moving car have? | kinetic energy | chemical energy only | nuclear energy | sound energy only
science | Which animal lays eggs? | a chicken | a cow | a dog | a horse
science | What do we call the remains of an ancient living thing preserved in rock? | a fossil | a mineral | a crystal | a magnet
science | Which change is a chemical change? | wood burning | ice melting | paper being cut | water boiling
science | Why does a metal spoon in hot soup get hot? | heat conducts through the metal | the spoon makes its own heat | cold leaves the spoon | light warms it
science | What protects the brain? | the skull | the ribs | the spine only | the muscles of the arm
science | Which of these is a liquid at room temperature? | water | iron | oxygen | salt
science | Seeds need water, air and what else to sprout? | the right temperature | darkness forever | salt | sand
science | Which unit is used to measure mass? | kilograms | metres | litres | seconds
science | What covers most of Earth's surface? | water | ice | desert | forest
science | Which animal uses gills to breathe? | a fish | a bird | a cat | a lizard
science | What makes a rainbow appear? | sunlight split by raindrops | wind over the sea | smoke in the air | moonlight on snow
science | Which part of the body has the most bones? | the hands and feet | the head | the chest | the stomach
science | What happens to water in a puddle on a sunny day? | it evaporates | it freezes | it turns to sand | it becomes heavier
science | Which of these animals is an insect? | an ant | a spider | a snail | a worm
science | Which blood cells fight infection? | white blood cells | red blood cells | platelets only | skin cells
science | A compass needle points toward which direction? | north | south | east | up
science | Which is the closest star to Earth? | the Sun | Sirius | Polaris | the Moon
science | Which property lets a boat float on water? | it is less dense than the water it pushes away | it is heavier than water | it is made of metal | it is painted
science | What do decomposers such as fungi do? | break down dead matter | make food from sunlight | hunt large animals | pollinate flowers
science | Sound cannot travel through which of these? | a vacuum | water | air | steel
science | Which is a way to save water at home? | turning off the tap while brushing teeth | taking longer showers | watering the lawn at noon | leaving a hose running
science | What is the role of the stem of a plant? | it carries water to the leaves | it makes seeds | it catches insects | it stores sunlight
science | Which of these is a natural satellite of Earth? | the Moon | the Sun | Mars | a comet
science | What do we call a scientist who studies rocks? | a geologist | a botanist | a zoologist | an astronomer
science | Which cools a hot drink fastest? | pouring it into a wide metal pan | covering it with a lid | wrapping it in a towel | keeping it in a flask
science | Which food is the best source of protein? | beans | sugar | butter | lettuce
commonsense | Where would you most likely keep milk so it stays fresh? | in the refrigerator | in the oven | on a sunny windowsill | in a drawer
commonsense | What do people usually use to cut paper? | scissors | a spoon | a pillow | a towel
commonsense | If it starts raining while you walk, what would you open? | an umbrella | a book | a window | a suitcase
commonsense | Where do people usually go to borrow books? | a library | a bakery | a garage | a gym
commonsense | What do you need to unlock a door? | a key | a fork | a pencil | a plate
commonsense | What would you wear to keep your hands warm in winter? | gloves | sandals | sunglasses | a belt
commonsense | Where is a pilot most likely to work? | in an airplane | in a submarine | in a bakery | on a farm tractor
commonsense | What do you do with a toothbrush? | clean your teeth | comb your hair | cut vegetables | write letters
commonsense | Why do people set an alarm clock? | to wake up on time | to cook dinner | to water plants | to clean the floor
commonsense | A person who is very tired will most likely want to do what? | sleep | run a marathon | paint the house | lift weights
commonsense | Where would you find a cash register? | in a shop | in a forest | on a beach | in a bedroom
commonsense | What do people use to see in the dark? | a flashlight | a spoon | a blanket | a mirror
commonsense | If the floor is wet, what might happen when you walk on it? | you might slip | you might float | you might shrink | you might grow
commonsense | What do you usually do before crossing a busy street? | look both ways | close your eyes | run backwards | sit down
commonsense | Where do people usually cook their meals? | in the kitchen | in the bathroom | in the garage | in the attic
commonsense | What is a chair mainly used for? | sitting | sleeping outdoors | cooking | swimming
commonsense | A friend's birthday is coming. What might you give them? | a present | a parking ticket | a bill | homework
commonsense | What do you need to make a phone call? | a phone | a hammer | a ladder | a bucket
commonsense | Where would you most likely see many fish swimming? | in an aquarium | in a desert | on a rooftop | in a closet
commonsense | What happens to ice cream left in the sun? | it melts | it freezes harder | it turns into bread | it grows
commonsense | Why would someone go to a dentist? | to have their teeth checked | to buy shoes | to fix a car | to mail a letter
commonsense | What do you put on a letter before mailing it? | a stamp | a sticker of a cat only | butter | a bandage
commonsense | If you are thirsty, what should you drink? | water | sand | glue | paint
commonsense | What do people use to dry themselves after a shower? | a towel | a newspaper | a plate | a shoe
commonsense | Where would you park a car? | in a garage | in a bathtub | on a bookshelf | in a refrigerator
commonsense | What does a baker mainly make? | bread | shoes | furniture | medicine
commonsense | Why do people wear seat belts in cars? | to stay safe in a crash | to look taller | to keep warm | to drive faster
commonsense | What might you bring to a picnic? | a basket of food | a bathtub | a snow shovel | a desk lamp
commonsense | Where do children usually go to learn to read and write? | school | a prison | a factory | a hospital ward
commonsense | If a glass falls on a hard floor, what is likely to happen? | it breaks | it bounces to the ceiling | it melts | it grows bigger
commonsense | What do you use to write on a whiteboard? | a marker | a spoon | a crayon made of ice | a sponge only
commonsense | Someone who wants to lose weight might do what? | exercise more | eat more sweets | sleep all day | skip all water
commonsense | Where would you buy a train ticket? | at a train station | at a dentist | at a swimming pool | at a library desk
commonsense | What do people usually do at a funeral? | mourn someone who died | celebrate a wedding | play football | buy groceries
commonsense | What is the usual reason to visit a bank? | to manage money | to get a haircut | to see a film | to buy fruit
commonsense | If your hands are dirty, what should you do? | wash them with soap | put on gloves over the dirt | wipe them on bread | ignore it before eating
commonsense | What does a firefighter mainly do? | put out fires | deliver letters | teach maths | bake cakes
commonsense | What do you need to play tennis? | a racket and a ball | a fishing rod | a paintbrush | a violin
commonsense | Why do people close curtains at night? | for privacy and darkness | to let in sunlight | to grow plants | to cool the oven
commonsense | What would you use to carry groceries home? | a bag | a fork | a comb | a pillowcase full of water
commonsense | What does a farmer grow in a field? | crops | cars | computers | clothes
commonsense | A baby that is hungry will most likely do what? | cry | drive | read | whistle a song
commonsense | Where do people keep their clothes? | in a wardrobe | in the oven | in the sink | in the fridge
commonsense | What do you do when you receive a gift? | say thank you | throw it away at once | ask for money | hide from the giver
commonsense | Why do people water plants? | so the plants do not dry out | to make them smaller | to keep insects warm | to clean the pots
commonsense | What is the main use of a map? | finding your way | cooking rice | measuring weight | keeping time
commonsense | What happens if you do not sleep for a long time? | you feel very tired | you grow taller | you become stronger | you stop being hungry forever
commonsense | Where would you go to see a play? | a theatre | a car wash | a dentist | a laundry
commonsense | What do you use to eat soup? | a spoon | a knife | chopsticks only | a straw made of paper
commonsense | Why do people put on sunscreen at the beach? | to protect their skin from the sun | to swim faster | to keep sand away | to smell like the sea
commonsense | If the traffic light is red, what should a driver do? | stop | speed up | honk and go | turn off the engine and leave
commonsense | Where does a doctor usually work? | in a hospital | in a library | in a bakery | on a fishing boat
commonsense | What would you use to hang a picture on a wall? | a nail | a sponge | a spoon | a sock
commonsense | What do people often do when they meet someone new? | shake hands | turn away | fall asleep | start shouting
commonsense | Why would a person carry a map and a compass on a hike? | to avoid getting lost | to cook lunch | to stay dry | to build a tent
commonsense | What is the usual purpose of a fence around a garden? | to keep animals out | to grow tomatoes | to water the lawn | to make it rain
commonsense | When you feel cold, what might you put on? | a sweater | shorts | sunglasses | flip-flops
commonsense | What do people use to take a photo? | a camera | a kettle | a broom | a ruler
commonsense | Where would you put rubbish? | in a bin | in the fridge | under the bed | in the washing machine
commonsense | What is usually needed to bake a cake? | an oven | a bicycle | a hammer | a telescope
commonsense | What do people usually do at a restaurant? | eat a meal | sleep overnight | repair cars | take exams
commonsense | If a baby is sleeping, how should you talk nearby? | quietly | loudly | with a megaphone | by shouting
commonsense | What do you use to open a can of beans? | a can opener | a paintbrush | a pillow | a candle
commonsense | Why might someone bring an umbrella on a sunny day? | the forecast said it may rain later | to water flowers | to keep warm | to dig a hole
"""


def main() -> None:
    rows = [line.split(" | ") for line in QUESTIONS.strip().splitlines()]
    assert len(rows) == 128, len(rows)
    out = Path(__file__).resolve().parents[1] / "langchain_selfamplify/data/demo/demo_mcq.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        for i, (category, question, correct, *wrong) in enumerate(rows):
            assert len(wrong) == 3, question
            position = i % 4
            texts = wrong[:position] + [correct] + wrong[position:]
            record = {
                "id": f"demo-{i:03d}",
                "question": question,
                "choices": {"label": list("ABCD"), "text": texts},
                "answerKey": "ABCD"[position],
                "category": category,
                "split": "test" if (i // 4) % 2 else "pool",
            }
            handle.write(json.dumps(record) + "\n")
    print(f"wrote {len(rows)} questions to {out}")


if __name__ == "__main__":
    main()
