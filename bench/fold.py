"""Summarise a py-spy raw (collapsed-stack) profile: inclusive and self time per function.

    py-spy record -p PID -f raw -o prof.raw ; python bench/fold.py prof.raw [filter]
"""
import sys
from collections import Counter

inclusive, own, total = Counter(), Counter(), 0
for line in open(sys.argv[1]):
    stack, _, count = line.rstrip().rpartition(" ")
    n = int(count)
    frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
              if " (" in f else f for f in stack.split(";")]
    if len(sys.argv) > 2 and not any(sys.argv[2] in f for f in frames):
        continue
    total += n
    for f in set(frames):
        inclusive[f] += n
    own[frames[-1]] += n
print(f"{total} samples")
print("inclusive:")
for f, n in inclusive.most_common(35):
    print(f"  {100 * n / total:5.1f}%  {f}")
print("self:")
for f, n in own.most_common(20):
    print(f"  {100 * n / total:5.1f}%  {f}")
