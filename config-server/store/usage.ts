// What refers to an image: the default, groups and nodes whose profile names it. Any Store.

import type { Store } from './types.ts';

/** `default`, `group G`, `node MAC`, for messages and `image list`. */
export async function imageUsers(store: Store, version: string): Promise<string[]> {
  const users: string[] = [];
  if ((await store.images.getDefault()) === version) users.push('default');
  for (const { name, profile } of await store.profiles.listGroups())
    if (profile.image === version) users.push(`group ${name}`);
  for (const { mac, profile } of await store.profiles.list())
    if (profile.image === version) users.push(`node ${mac}`);
  return users;
}
