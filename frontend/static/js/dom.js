// Small DOM helpers. Data is only ever put into the page as text: textContent,
// Text nodes and attribute values, never innerHTML/insertAdjacentHTML.

/** The element with this id; throws if the template lacks it (a bug, not data). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node;
}

/**
 * Create an element. props: {text, className, dataset, ...attributes}.
 * Children may be nodes or strings (strings become Text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (/^on/i.test(key)) throw new Error(`el(): no event handler attributes (${key})`);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Set a node's text only when it changed (saves layout work on 1 s updates). */
export function setText(node, value) {
  const text = value === null || value === undefined ? "" : String(value);
  if (node.textContent !== text) node.textContent = text;
}

/** Set or clear a data-state attribute. */
export function setState(node, state) {
  if (state) {
    if (node.dataset.state !== state) node.dataset.state = state;
  } else {
    delete node.dataset.state;
  }
}
